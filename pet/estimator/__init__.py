"""The estimator layer: ``PetClassifier`` (a scikit-learn estimator), the saved-folder format and
its manifest, Hub transport and the model card."""
