"""Model-agnostic evaluation: metrics, figures and report tables computed from prediction frames.

Every model (TF-IDF, neural, meta-learned) writes predictions in one of two contracts, so the
same code scores all of them:

- classification: ``row_id``, ``label`` (gold), ``predicted`` and optional ``proba__<class>``;
- NER: ``row_id``, ``tags`` (gold IOB2 list) and ``predicted`` (IOB2 list of the same length).
"""
