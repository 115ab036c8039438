"""SLAP's demo app (Gradio, the Hub's Space convention): `app.py` at the repository root runs
`slap_audio.space.app`, and `slap-push --space` publishes that module as a Space's `app.py`."""
