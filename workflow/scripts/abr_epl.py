# rule abr_epl_sweeps: read every EPL level-sweep file under the configured root and track waves across levels.
from dualspace.abr.stages import epl_tracks
from dualspace.logs import log_to

with log_to(snakemake.log[0]):
    epl_tracks(snakemake.params.root, snakemake.output.table, snakemake.output.figures,
               picker=snakemake.params.picker)
