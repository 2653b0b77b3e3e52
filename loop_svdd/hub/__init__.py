"""Publishing detectors to the Hugging Face Hub: model cards, model repositories and Gradio Spaces.

The card and Space templates are package data in ``loop_svdd/hub/templates/`` (see ``hub/README.md``).
"""

from .card import generate_model_card
from .publish import PublishError, prepare_model_repo, upload_folder_to_hub
from .space import prepare_space

__all__ = ["PublishError", "generate_model_card", "prepare_model_repo", "prepare_space", "upload_folder_to_hub"]
