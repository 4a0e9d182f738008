# The methods of the pruning study (sourced by the sweep scripts): conf/method/ presets, one Hydra sweep value each.
PRUNING_METHODS=random,el2n_topk,el2n_sims,forgetting_topk,forgetting_sims,aum_topk,aum_sims,sim_topk,sim_sims,aum_ccs
