"""SageMaker training contract and the ensemble training loop."""
