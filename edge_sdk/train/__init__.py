"""Training recipes for the models in ``edge_sdk/zoo`` (need the ``train`` extra).

``speech_data`` gathers speech (synthesised with espeak-ng/flite, and real Asterisk prompts with a fixed
file-level split), ``noise_data`` makes noise, and ``tiny_denoiser`` trains and exports our own speech
denoiser. Torch is imported only by the recipe modules that train, never by the runtime package.
"""
