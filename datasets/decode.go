package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// Image formats recognised by DecodeImage.
const (
	formatUnknown = iota
	formatJPEG
	formatPNG
)

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
)

func sniffFormat(data []byte) int {
	switch {
	case bytes.HasPrefix(data, jpegMagic):
		return formatJPEG
	case bytes.HasPrefix(data, pngMagic):
		return formatPNG
	}
	return formatUnknown
}

// MaxImagePixels bounds the width*height an image header may declare
// (about 134 megapixels); larger images are refused before any pixel
// memory is allocated, so a corrupt or hostile header cannot exhaust memory.
const MaxImagePixels = 1 << 27

// MaxImageFileBytes bounds the size of an image file (1,207,959,552
// bytes): 9 bytes a pixel of the largest image the decoders accept
// (MaxImagePixels), that is the 8 bytes of 16-bit RGBA, PNG's widest pixel,
// stored without compression, and one more for PNG's filter bytes, chunk
// and deflate framing and metadata. Real images are far smaller (a JPEG
// rarely takes more than 1 byte a pixel). A larger file is refused before
// it is read, and a stream (a pipe, a device) is read no further, with an
// error wrapping ErrTooLarge.
const MaxImageFileBytes = 9 * MaxImagePixels

// imageFileLimit bounds the image files DecodeImageFile and the Loader
// read; a file that does not start like a JPEG or PNG is refused after its
// first bytes.
var imageFileLimit = sizeLimit{max: MaxImageFileBytes, what: "an image file", head: checkImageSignature}

// checkImageSignature returns the error of DecodeImage for data that
// starts like neither a JPEG nor a PNG, and nil for data that does.
func checkImageSignature(data []byte) error {
	if sniffFormat(data) != formatUnknown {
		return nil
	}
	if len(data) == 0 {
		return errors.New("empty file: want a JPEG or PNG image")
	}
	return fmt.Errorf("unknown image format (first bytes % x): want JPEG or PNG", data[:min(len(data), 8)])
}

func checkImageSize(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image size %dx%d: want a non-empty image", w, h)
	}
	if int64(w)*int64(h) > MaxImagePixels {
		return fmt.Errorf("image size %dx%d exceeds the limit of %d pixels", w, h, MaxImagePixels)
	}
	return nil
}

// DecodeImage decodes a JPEG (grayscale, YCbCr/RGB or Adobe CMYK/YCCK) or
// PNG image into dst as 3-channel RGB, reusing dst.Pix when it is large
// enough. The format is recognised by its signature, not by a file name.
// JPEGs go through libjpeg-turbo when the package was built with it (see
// [TurboJPEGAvailable]) and through Go's image/jpeg otherwise.
func DecodeImage(data []byte, dst *Image) error {
	switch sniffFormat(data) {
	case formatJPEG:
		if turboAvailable {
			return decodeJPEGTurbo(data, dst)
		}
		return DecodeJPEGGo(data, dst)
	case formatPNG:
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if err := checkImageSize(cfg.Width, cfg.Height); err != nil {
			return err
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			return err
		}
		return imageToRGB(img, dst)
	}
	return checkImageSignature(data)
}

// decodeImageRegion decodes the image in data for a caller that needs only
// part of it: it calls plan with the image's size, and plan returns the
// rectangle (x, y, w, h) wanted, which must lie inside the image. dst then
// holds at least that rectangle: the image's pixels from (offX, offY) on,
// identical to those of DecodeImage. JPEGs decoded by libjpeg-turbo are
// decoded only down to the rectangle's bottom row and converted to pixels
// only around it; other images are decoded whole (offX = offY = 0).
func decodeImageRegion(data []byte, dst *Image, plan func(width, height int) (x, y, w, h int)) (offX, offY int, err error) {
	if !turboAvailable || sniffFormat(data) != formatJPEG {
		if err := DecodeImage(data, dst); err != nil {
			return 0, 0, err
		}
		x, y, w, h := plan(dst.Width, dst.Height)
		return 0, 0, checkRegion(dst.Width, dst.Height, x, y, w, h)
	}
	width, height, err := jpegSizeTurbo(data)
	if err != nil {
		return 0, 0, err
	}
	if err := checkImageSize(width, height); err != nil {
		return 0, 0, err
	}
	x, y, w, h := plan(width, height)
	if err := checkRegion(width, height, x, y, w, h); err != nil {
		return 0, 0, err
	}
	// Room for whole rows, so that the decoder never has to ask for more.
	if n := width * h * 3; cap(dst.Pix) < n {
		dst.Pix = make([]uint8, 0, n)
	}
	xoff, err := decodeJPEGRegionTurbo(data, x, y, w, h, dst)
	return xoff, y, err
}

// checkRegion checks that the w x h rectangle at (x, y) lies inside a
// width x height image.
func checkRegion(width, height, x, y, w, h int) error {
	if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > width || y+h > height {
		return fmt.Errorf("region %dx%d at (%d,%d) is not inside the %dx%d image", w, h, x, y, width, height)
	}
	return nil
}

// DecodeImageFile reads and decodes the JPEG or PNG file at path; errors
// name the file. A file larger than MaxImageFileBytes is refused before it
// is read (a stream such as a pipe is read no further than that) with an
// error wrapping ErrTooLarge, and a file that starts like neither a JPEG
// nor a PNG is refused after its first bytes.
func DecodeImageFile(path string, dst *Image) error {
	data, err := readFileAtMost(path, imageFileLimit, nil)
	if err != nil {
		return err
	}
	if err := DecodeImage(data, dst); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// TurboJPEGAvailable reports whether JPEGs are decoded by libjpeg-turbo
// (cgo build without the nolibjpeg tag) rather than Go's image/jpeg.
func TurboJPEGAvailable() bool { return turboAvailable }

// DecodeJPEGGo decodes a JPEG with Go's image/jpeg into dst as RGB, whatever
// decoder DecodeImage uses. It exists for comparison and benchmarks.
func DecodeJPEGGo(data []byte, dst *Image) error {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := checkImageSize(cfg.Width, cfg.Height); err != nil {
		return err
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return imageToRGB(img, dst)
}

// imageToRGB converts a decoded image to packed RGB, with fast paths for the
// types image/jpeg and image/png return. Alpha is dropped, not composited
// (as PIL's convert("RGB") does).
func imageToRGB(img image.Image, dst *Image) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image size %dx%d: want a non-empty image", w, h)
	}
	dst.Resize(w, h, 3)
	out := dst.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		hs, vs := subsampling(m.SubsampleRatio)
		for y := 0; y < h; y++ {
			yrow := m.Y[(y)*m.YStride:]
			cy := (b.Min.Y+y)/vs - b.Min.Y/vs
			crow := cy * m.CStride
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				ci := crow + (b.Min.X+x)/hs - b.Min.X/hs
				r, g, bb := color.YCbCrToRGB(yrow[x], m.Cb[ci], m.Cr[ci])
				o[3*x], o[3*x+1], o[3*x+2] = r, g, bb
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := out[y*w*3:]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				r, g, bb := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				o[3*x], o[3*x+1], o[3*x+2] = r, g, bb
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		// Premultiplied; PNG only returns *image.RGBA for opaque images.
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(color.RGBA{row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]}).(color.NRGBA)
				o[3*x], o[3*x+1], o[3*x+2] = c.R, c.G, c.B
			}
		}
	default:
		for y := 0; y < h; y++ {
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o[3*x], o[3*x+1], o[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return nil
}

// subsampling returns the horizontal and vertical chroma subsampling factors.
func subsampling(r image.YCbCrSubsampleRatio) (h, v int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}
