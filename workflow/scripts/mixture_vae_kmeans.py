# rule mixture_vae_kmeans: k-means on raw pixels, the clustering baseline of the same split.
from threadpoolctl import threadpool_limits

from dualspace.logs import log_to
from dualspace.mixture_vae.stages import kmeans_run

with log_to(snakemake.log[0]), threadpool_limits(snakemake.threads):
    kmeans_run(snakemake.input.train, snakemake.input.test, snakemake.output[0], K=snakemake.params.K,
               seed=snakemake.params.seed)
