"""Radiology wing: CT volumes to tumour cubes and 3D networks (notebook 02); pelvic MRI to 2.5D multi-scale networks (notebook 05).

CT: :mod:`.ct_cubes` (contoured scans to the paper's tumour cube), :mod:`.cube_data` (cube datasets and 3D augmentation),
:mod:`.ct_prognosis` (labels, splits, training, transfer learning), :mod:`.saliency3d`
(Grad-CAM, SmoothGrad) and :mod:`.volume_views` (slice plots and the viewer). MRI:
:mod:`.mri_slices` (normalisation, two-scale 2.5D crops, cache, dataset), :mod:`.mri_networks`
(ConvNeXt and dual-path ViT branches, the MSM, attention rollout, Grad-CAM),
:mod:`.mri_recurrence` (training and read-out) and :mod:`.scanner_quality` (each centre's scan noise and pixel size). Reads volumes
through :mod:`mmsurv.io`; never imports the virtual cohort or the pathology wing.
"""
