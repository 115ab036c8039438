"""SLAP's demo app, the Hub Space convention's `app.py`: `python app.py [--model PATH_OR_REPO_ID]`.

The app itself is `slap_audio.space.app` (see its docstring for the tabs and options).
"""

from slap_audio.space.app import main

if __name__ == "__main__":
    main()
