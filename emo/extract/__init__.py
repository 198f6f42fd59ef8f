"""From recordings to features, offline: eGeMAPS audio functionals and per-frame face features.

Needs the optional extra: `pip install -e '.[extract]'` (PyAV, opensmile, dlib with its shipped models).
"""
