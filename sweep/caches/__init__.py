"""What is computed once and read many times: decoded images, pooled features, frozen prefixes.

Every cache is an artifact (:mod:`sweep.caches._artifacts`): written under a temporary name,
checksummed, renamed into place and described by a manifest written last, all under a file lock,
so a half-written or damaged file is rebuilt, never read. They live under ``OCL_CACHE_DIR``.

- :func:`load_image_cache`: every image decoded once, resized, kept as uint8 in a memory map;
- :func:`load_feature_bank`: the pooled output of every candidate layer from one forward pass,
  for clean images and augmented views (feature-extraction trials never run the backbone);
- :func:`load_spatial_bank`: each dense block's last output, so fine-tuning trains only the layers
  after its unfreeze boundary.
"""

from sweep.caches._disk import FREE_DISK_MARGIN, DiskPlan
from sweep.caches._feature_bank import FeatureBank, ViewSpec, feature_bank_bytes, load_feature_bank
from sweep.caches._image_cache import (
    MIN_IMAGE_SIZE,
    ImageCache,
    cache_key,
    check_image_size,
    image_cache_bytes,
    load_image_cache,
)
from sweep.caches._spatial_bank import BLOCKS, BankPlan, SpatialBank, bank_plan, block_shape, entry_layer, load_spatial_bank

__all__ = [
    "BLOCKS",
    "FREE_DISK_MARGIN",
    "MIN_IMAGE_SIZE",
    "BankPlan",
    "DiskPlan",
    "FeatureBank",
    "ImageCache",
    "SpatialBank",
    "ViewSpec",
    "bank_plan",
    "block_shape",
    "cache_key",
    "check_image_size",
    "entry_layer",
    "feature_bank_bytes",
    "image_cache_bytes",
    "load_feature_bank",
    "load_image_cache",
    "load_spatial_bank",
]
