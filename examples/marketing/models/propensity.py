# The propensity model of the marketing example: a logistic regression on a session's features,
# trained online. `score(body, meta)` gets a `session` (scored) or an `outcome` (one gradient step).
import math

LEARNING_RATE = 0.05
weights = [-1.0, 0.2, 0.6, 0.1]
version = 0


def features(session):
    return [
        1.0,
        math.log1p(session["views"]),
        float(session["carts"]),
        math.log1p(session["durationMs"] / 1000.0),
    ]


def score(body, meta):
    global version
    if meta["type"] == "outcome":
        error = (1.0 if body["purchased"] else 0.0) - body["score"]
        for i, x in enumerate(body["features"]):
            weights[i] += LEARNING_RATE * error * x
        version += 1
        return None
    x = features(body)
    z = sum(w * xi for w, xi in zip(weights, x))
    p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
    return {
        "type": "score",
        "body": {
            "sessionId": body["sessionId"],
            "userId": body["userId"],
            "device": body["device"],
            "score": p,
            "features": x,
            "purchased": body["purchased"],
            "modelVersion": version,
        },
    }
