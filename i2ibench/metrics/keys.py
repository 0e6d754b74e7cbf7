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
KID = "kid"                          # KID mean over subsets (Bińkowski et al. 2018, torch-fidelity's definition)
KID_STD = "kid_std"                  # std of KID over its subsets
MKID = "mkid"                        # mean KID over a protocol's tasks or targets
PRECISION = "precision"              # Kynkäänniemi et al. 2019, k = 5
RECALL = "recall"                    # Kynkäänniemi et al. 2019, k = 5
TRANSLATION_ACC = "translation_acc"  # share of translations into t the domain classifier assigns to t
CONTENT_PRESERVATION = "content_preservation"  # share of outputs whose content label equals the input's
CLASSIFIER_VAL_ACC = "classifier_val_acc"      # validation accuracy of the classifier a metric used
MFID_CI_LOW = "mfid_ci_low"          # 95 % bootstrap interval of mFID over fake images, lower end
MFID_CI_HIGH = "mfid_ci_high"        # ... upper end
MKID_CI_LOW = "mkid_ci_low"          # 95 % bootstrap interval of mKID over fake images, lower end
MKID_CI_HIGH = "mkid_ci_high"        # ... upper end
LPIPS_IO = "lpips_io"                # LPIPS(input, output): ~0 = output equals input (no translation)
LPIPS_TRUTH = "lpips_truth"          # LPIPS(output, true translation), where the true translation is known
COLOUR_RECALL = "colour_recall"          # cmnist: distinct palette colours per input / palette size, mean over inputs
COLOUR_RECALL_SET = "colour_recall_set"  # cmnist: distinct palette colours over all outputs / palette size
COLOUR_PRECISION = "colour_precision"    # cmnist: share of outputs whose colour snaps to a palette colour
UNIQUE_COLOURS = "unique_colours"        # cmnist: distinct 10-degree hue bins among saturated outputs
REF_COLOUR_ACC = "ref_colour_acc"        # cmnist: share of reference-guided outputs in the reference's colour
UNIMODAL_MSE = "unimodal_mse"            # cmnist: MSE of colour -> gray against the true gray digit

ALL = (FID, MFID, DENSITY, COVERAGE, LPIPS, CLUSTER_ACC, LABEL_PRECISION, LABEL_RECALL, TOP1_ACC, LABEL_SLACK,
       KID, KID_STD, MKID, PRECISION, RECALL, TRANSLATION_ACC, CONTENT_PRESERVATION, CLASSIFIER_VAL_ACC,
       MFID_CI_LOW, MFID_CI_HIGH, MKID_CI_LOW, MKID_CI_HIGH, LPIPS_IO, LPIPS_TRUTH,
       COLOUR_RECALL, COLOUR_RECALL_SET, COLOUR_PRECISION, UNIQUE_COLOURS, REF_COLOUR_ACC, UNIMODAL_MSE)
