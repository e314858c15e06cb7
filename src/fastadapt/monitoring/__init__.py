"""Monitoring of a scored news stream: daily aggregates, negative-surge alerts and drift tests.

The modules are pure (pandas / numpy / scipy / statsmodels, no Kedro) and make no assumption
about the corpus: the entity column, the label set and the name of the "negative" label are all
parameters.

- :mod:`settings`: ``MonitoringSettings``, the whole ``monitoring:`` block validated once;
- :mod:`scoring`: the stream scored by any classifier, and the entities each item names;
- :mod:`aggregate`: per entity and day counts, negative share and mean negative score;
- :mod:`surge`: negative-share surges against each entity's own rolling baseline, the alerts table;
- :mod:`drift`: embedding drift (MMD permutation test) and label shift (chi-squared);
- :mod:`check`: the surge test checked on gold labels (PROTOCOL.md section 6);
- :mod:`plots`, :mod:`report`: an entity's timeline with its alerts, the morning report;
- :mod:`retraining`, :mod:`registry`, :mod:`cli`: champion / challenger in the MLflow registry;
- :mod:`serving`, :mod:`server`: the classifiers as MLflow pyfunc models, served with bounds.
"""
