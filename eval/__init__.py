"""Evaluation of SLAP models: retrieval, zero-shot and captioning metrics, representation probes,
plots, the report and the `slap-eval` command. Reads data through `slap_audio.data`."""
