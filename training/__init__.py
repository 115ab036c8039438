"""Training SLAP: token-budget batching, the packing collator, `SlapTrainer`, LoRA, the
`slap-train` command and the objective ablation. Data comes from `slap_audio.data`."""
