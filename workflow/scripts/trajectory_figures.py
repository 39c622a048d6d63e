# rule trajectory_figures: paths coloured by speed, feature histograms, duration-distance relation.
from dualspace.logs import log_to
from dualspace.trajectory.stages import figures

with log_to(snakemake.log[0]):
    figures(snakemake.input.test, dict(zip(snakemake.params.models, snakemake.input.evals)),
            {name: snakemake.output[name] for name in ("real_paths", "paths", "histograms", "duration_distance")})
