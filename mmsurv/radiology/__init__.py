"""Radiology wing: CT (later MRI) volumes to tumour cubes, 3D networks' training and evaluation, saliency, volume views.

Used by notebook 02 (and the MRI pipeline of 05). Modules: :mod:`.ct_cubes` (contoured scans
to the paper's tumour cube), :mod:`.cube_data` (cube datasets and 3D augmentation),
:mod:`.ct_prognosis` (labels, splits, training, transfer learning), :mod:`.saliency3d`
(Grad-CAM, SmoothGrad) and :mod:`.volume_views` (slice plots and the viewer). Reads volumes
through :mod:`mmsurv.io`; never imports the virtual cohort or the pathology wing.
"""
