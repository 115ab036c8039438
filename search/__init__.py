"""Search a sound library by text or by example with a SLAP model (`slap-search`, `SearchIndex`)."""

from slap_audio.search.index import ModelMismatch, SearchHit, SearchIndex, model_fingerprint
from slap_audio.search.library import AUDIO_EXTENSIONS, scan_library

__all__ = ["AUDIO_EXTENSIONS", "ModelMismatch", "SearchHit", "SearchIndex", "model_fingerprint", "scan_library"]
