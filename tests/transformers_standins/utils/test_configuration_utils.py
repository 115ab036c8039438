"""Stand-in for transformers' `tests/utils/test_configuration_utils.py` (not in the sdist).

`config_common_kwargs`: a value other than the default for common `PreTrainedConfig` arguments, so
that `ConfigTester.check_config_arguments_init` can see each one reach the config.
"""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "tie_word_embeddings": False,
    "chunk_size_feed_forward": 5,
    "architectures": ["SlapModel"],
    "finetuning_task": "zero-shot-audio-classification",
    "id2label": {0: "dog", 1: "siren"},
    "label2id": {"dog": 0, "siren": 1},
    "problem_type": "single_label_classification",
}
