"""Tables and plots of fitted mixtures (and of statsmodels GLMs beside them)."""
