"""Audio shared by training and inference: log-mel/MFCC features (numpy, so both see identical
features) and mixing speech with noise at a chosen SNR."""
