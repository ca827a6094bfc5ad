class LightCurveEstimator: pass
