"""Training on a corpus: select the normal loops, embed them, fit the Deep SVDD detector (``detectors.deep_svdd``)
through the engine's ``Detector``, calibrate and save (:mod:`.from_corpus`); evaluate a saved model against
labelled anomalies next to the baselines (:mod:`.evaluation`)."""
