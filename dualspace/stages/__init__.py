"""One module per rule file of workflow/rules/, one function per rule: paths and plain config values in,
files out. The Snakemake scripts only unpack `snakemake.*` and call these, so every stage also runs from a
notebook or a test without Snakemake.

    data.smk      -> stages.data       prepare_data
    generator.smk -> stages.generator  train_generator
    features.smk  -> stages.features   fit_phi, dump_pairs
    density.smk   -> stages.density    train_mdn, calibrate
    regions.smk   -> stages.regions    sample_drafts, score_drafts, select_region
    metrics.smk   -> stages.metrics    fid_features, metrics_base, metrics_alpha, draft_fidelity
                     stages.gather     collect_metrics (pandas only)
    figures.smk   -> stages.figures    make_figures
"""
