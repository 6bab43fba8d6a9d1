// C interface of context.cpp: libtorch's global switches for CUDA float32
// math (TF32 tensor cores, cuDNN's autotuner), which gotch does not expose.
#ifndef GSRMT_TORCH_CONTEXT_H
#define GSRMT_TORCH_CONTEXT_H

#ifdef __cplusplus
extern "C" {
#endif

// Each setter and reader returns NULL on success or a malloc'd error message
// the caller frees.
//
// set_tf32 allows (on != 0) or forbids TF32 in float32 matmuls (cuBLAS,
// torch.backends.cuda.matmul.allow_tf32) and in cuDNN's convolutions and
// RNNs (torch.backends.cudnn.allow_tf32); tf32 reads the two back.
char *gsrmt_set_tf32(int on);
char *gsrmt_tf32(int *matmul, int *cudnn);
// cuDNN's autotuner (torch.backends.cudnn.benchmark): each new input shape
// times the convolution algorithms once and keeps the fastest.
char *gsrmt_set_cudnn_benchmark(int on);
char *gsrmt_cudnn_benchmark(int *on);

#ifdef __cplusplus
}
#endif

#endif
