"""What dialogue logs feed beyond intent labels: suggested agent answers."""
