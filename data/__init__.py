"""Where SLAP's audio–caption data comes from, below both `training/` and `eval/`.

- `builtin_data`, `sound_events`, `captions`: the procedural generator (`builtin:<split>`);
- `sources`: `load_audio_text_dataset`, one reader for every source (built-in, audio folders, JSONL
  manifests, shards, Hub ids);
- `examples`: the example schema, decoding and the counts of skipped clips.

`training/` (batching, collator, Trainer) and `eval/` (metrics, plots) import from here; `eval/`
never imports `training/` (the layering: `data` ← `eval` ← `training`).
"""
