"""OCL: optimal cut-off layer sweeps for transfer learning on medical images.

The package is imported by every command, so it imports nothing heavy: TensorFlow and Keras load
only in the modules that build models.
"""

__version__ = "0.1.0"
