"""Scoring engine of the head-CT hemorrhage active-learning pipeline (Kuo et al., MICCAI 2018).

Research use only: not a medical device, not for diagnosis.
"""

__version__ = "0.1.0"
