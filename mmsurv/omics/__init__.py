"""Omics wing: gene-expression signatures (later: omics feature preprocessing for notebooks 03 and 04).

Works on the matrices :mod:`mmsurv.io.gdc` reads; never imports the virtual cohort.
"""
