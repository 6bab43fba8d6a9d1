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
//   - [OpenCIFAR10]: the official binary (cifar-10-batches-bin) and python
//     (cifar-10-batches-py) distributions, extracted or still in their
//     .tar.gz archives; [DownloadCIFAR10] fetches, verifies and extracts them.
//   - [OpenIDX], [OpenFashionMNIST], [OpenMNIST]: IDX files, plain or gzipped.
//   - [OpenImageFolder]: train/<class>/*, test/<class>/* and optional val/.
//   - [OpenMiniImageNet]: the four Mini-ImageNet layouts; the pooled ones are
//     split per class by [PooledSplit].
//
// [Open] picks a reader by name.
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
// # Loading
//
// [Loader] decodes and augments samples on worker goroutines and yields
// batches in order through a bounded prefetch queue. Shuffling and every
// random choice of a sample depend only on (seed, epoch, sample index), so a
// run is reproducible whatever the number of workers.
package datasets
