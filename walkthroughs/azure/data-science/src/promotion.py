"""The promote-if-better rule the evaluate step applies (unit-tested by run-unit-tests.yml)."""


def should_promote(candidate_rmse: float, production_rmse: float | None, min_gain: float) -> bool:
    """True when there is no production model yet, or when the candidate's RMSE is lower than
    production's by more than min_gain (a tie, or a gain of exactly min_gain, keeps production)."""
    if production_rmse is None:
        return True
    return production_rmse - candidate_rmse > min_gain
