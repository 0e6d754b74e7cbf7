"""Metric keys: the ``metric`` column of every result record and the names in the metric registry.

Keys are stable strings (committed tables and published numbers refer to them); add new ones,
never rename.
"""

FID = "fid"                          # FID of one task (src->trg) or one target (pooled)
MFID = "mfid"                        # mean FID over a protocol's tasks or targets
DENSITY = "density"                  # Naeem et al. 2020, k = 5
COVERAGE = "coverage"                # Naeem et al. 2020, k = 5
LPIPS = "lpips"                      # LPIPS diversity among outputs for one input
CLUSTER_ACC = "cluster_acc"          # clustering accuracy, Hungarian matching
LABEL_PRECISION = "label_precision"  # multi-hot pseudo-label precision (micro)
LABEL_RECALL = "label_recall"        # multi-hot pseudo-label recall (micro)
TOP1_ACC = "top1_acc"                # top-1 accuracy of pseudo labels
LABEL_SLACK = "label_slack"          # fraction of images active for no domain (LANIT's slack domain)
LPIPS_IO = "lpips_io"                # LPIPS(input, output): ~0 = output equals input (no translation)
LPIPS_TRUTH = "lpips_truth"          # LPIPS(output, true translation), where the true translation is known
FLIP_RATE = "flip_rate"              # share of outputs whose content class differs from the input's
TARGET_SUCCESS = "target_success"    # share of outputs a domain classifier assigns to the target

ALL = (FID, MFID, DENSITY, COVERAGE, LPIPS, CLUSTER_ACC, LABEL_PRECISION, LABEL_RECALL, TOP1_ACC, LABEL_SLACK,
       LPIPS_IO, LPIPS_TRUTH, FLIP_RATE, TARGET_SUCCESS)
