// A decode round on the device (cuda_round.cu): draft, verify, accept and feed the drafter with one
// host synchronisation, the read of the accept count. Internal to the CUDA backend.
#ifndef MIMO_CUDA_ROUND_CUH
#define MIMO_CUDA_ROUND_CUH

#include "cuda_engine.cuh"

// Whether rounds with these sampling parameters run on the device (greedy or plain temperature, whole
// vocabulary on this device).
bool cuda_has_device_round(const CudaEngine *e, const mimo_sampling_params *p);
int  cuda_device_round(CudaEngine *e, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err);
void cuda_round_destroy(CudaRound *r);
// Forgets the captured round graphs (they are captured again on next use): a persistent step inside one
// changes with the phase stamps (cuda_persistent.cu).
void cuda_round_drop_graphs(CudaRound *r);

#endif
