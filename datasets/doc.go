// Package datasets reads the image data sets gsrmt trains on, decodes and
// augments their images, and assembles them into batches.
//
// Everything here is plain Go: images are [Image] values (8-bit, interleaved
// HWC), and batches are Go slices (float32 NCHW normalized, or uint8 NCHW)
// that a later step copies into tensors. JPEG decoding uses libjpeg-turbo
// through cgo when the package is built with cgo and without the
// "nolibjpeg" build tag, and Go's image/jpeg otherwise.
//
// # Data sets
//
// Every reader implements [Dataset] for one split ([Train], [Val] or
// [Test]):
//
//   - [OpenCIFAR10], [OpenCIFAR100]: the official binary
//     (cifar-10-batches-bin, cifar-100-binary) and python
//     (cifar-10-batches-py, cifar-100-python) distributions, extracted or
//     still in their .tar.gz archives; [DownloadCIFAR10] and
//     [DownloadCIFAR100] fetch, verify and extract them.
//   - [OpenIDX], [OpenFashionMNIST], [OpenMNIST]: IDX files, plain or gzipped.
//   - [OpenImageFolder]: train/<class>/*, test/<class>/* and optional val/.
//   - [OpenMiniImageNet]: the four Mini-ImageNet layouts; the pooled ones are
//     split per class by [PooledSplit].
//
// [Open] picks a reader by name.
//
// # Size limits
//
// No file is read whole on trust. Each format has a size limit derived from
// what it can hold: [MaxImageFileBytes] for an image file, exactly the size its
// header declares for an IDX file (the header is read first), 30,730,000 bytes
// (10000 records of 3073 bytes) for a CIFAR-10 binary batch, 153,700,000 (50000
// records of 3074 bytes) for a CIFAR-100 binary file, and bounds derived the
// same way for the CIFAR python files and Mini-ImageNet pickle caches and CSV
// files. The limit is checked before a regular file is read and enforced while
// reading a stream (a gzip or tar member, a pipe, a device such as /dev/zero);
// a file over it is an error naming the file, the size found and the limit,
// wrapping [ErrTooLarge]. A [Loader] with SkipBadImages skips and counts such
// an image like any corrupt one.
//
// # Transforms
//
// Image transforms ([RandomResizedCrop], [ResizeCenterCrop], [RandomCrop],
// [HorizontalFlip], [RandAugment]) work on [Image] values and draw their
// randomness only from the *rand.Rand they are given, so a transform is
// reproducible from a seed. [Normalize] turns an image into float32 CHW,
// [RandomErasing] works on that, and [Mixer] mixes whole float32 batches
// (Mixup / CutMix with label smoothing folded into soft targets).
//
// Which transforms a run uses is this package's policy too: [NativeSide]
// gives a data set's native side, [TrainTransformFor] and [EvalTransformFor]
// pick the small-image recipe (up to [SmallImageMaxScale] times the native
// side: [PadTo] or [Resize], random crop with padding, flip) or the 224 px
// one, and [TransformRule] says which and why; [DefaultDir] names a data
// set's default folder, [Download] fetches the data sets that can be, and
// [PrepareForModel] prepares one image for prediction. Every transform
// describes itself (a String method); [Describe] gives the words config.json
// records.
//
// # Loading
//
// [Loader] decodes and augments samples on worker goroutines and yields
// batches in order through a bounded prefetch queue. Shuffling and every
// random choice of a sample depend only on (seed, epoch, sample index), so a
// run is reproducible whatever the number of workers. When the transform
// starts with a [RandomResizedCrop] and the samples are image files, the
// Loader fuses the crop with decoding: a JPEG is decoded by libjpeg-turbo
// only down to the crop's bottom row and converted to pixels only around
// it, and the resize reuses per-worker buffers; the batches are identical
// to those of decoding whole images.
//
// # Benchmark
//
// BenchmarkTrainLoader224 measures images per second of the 224 px training
// pipeline through the Loader on 1000 real-size (500x375) JPEGs generated
// from the CIFAR-10 images by package internal/benchjpeg;
// bench/datasets-bench.sh runs it side by side with torchvision's pipeline
// (bench/torchvision_pipeline.py), see bench/DATASETS.md.
package datasets
