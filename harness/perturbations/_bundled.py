"""Import every bundled family module so their ``@register`` decorators run."""
from harness.perturbations import (  # noqa: F401
    adversarial,  # noqa: F401
    blur,
    ct_beam,
    ct_dose,
    ct_intensity,
    ct_metal,
    intensity,
    mri_bias,
    mri_kspace,
    mri_motion,
    noise,
    quantization,
    resolution,
    scanner_shift,
    spatial,
    us_artifacts,
    us_gain,
    us_speckle,
)
