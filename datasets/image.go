package datasets

import "fmt"

// Image is an 8-bit image stored row by row with interleaved channels (HWC):
// the value of channel c of pixel (x, y) is Pix[(y*Width+x)*Channels+c].
// Channels is 3 (RGB) for colour data sets and 1 for grayscale ones.
type Image struct {
	Pix      []uint8
	Width    int
	Height   int
	Channels int
}

// NewImage returns a zeroed image of the given size.
func NewImage(width, height, channels int) *Image {
	return &Image{Pix: make([]uint8, width*height*channels), Width: width, Height: height, Channels: channels}
}

// Resize sets the image's size and makes Pix exactly width*height*channels
// long, reusing the old backing array when it is large enough. The pixel
// values are left unspecified.
func (m *Image) Resize(width, height, channels int) {
	n := width * height * channels
	if cap(m.Pix) < n {
		m.Pix = make([]uint8, n)
	}
	m.Pix = m.Pix[:n]
	m.Width, m.Height, m.Channels = width, height, channels
}

// Clone returns a deep copy of m.
func (m *Image) Clone() *Image {
	c := *m
	c.Pix = append([]uint8(nil), m.Pix...)
	return &c
}

// CopyFrom makes m a copy of src, reusing m's buffer where possible.
func (m *Image) CopyFrom(src *Image) {
	m.Resize(src.Width, src.Height, src.Channels)
	copy(m.Pix, src.Pix)
}

// Validate reports whether the image's fields are consistent.
func (m *Image) Validate() error {
	if m.Width <= 0 || m.Height <= 0 {
		return fmt.Errorf("image size %dx%d: want positive width and height", m.Width, m.Height)
	}
	if m.Channels != 1 && m.Channels != 3 {
		return fmt.Errorf("image has %d channels: want 1 or 3", m.Channels)
	}
	if len(m.Pix) != m.Width*m.Height*m.Channels {
		return fmt.Errorf("image %dx%dx%d holds %d bytes: want %d", m.Width, m.Height, m.Channels,
			len(m.Pix), m.Width*m.Height*m.Channels)
	}
	return nil
}

// setFromCHW fills m (HWC) from a channel-major buffer of the given size.
func (m *Image) setFromCHW(chw []uint8, width, height, channels int) {
	m.Resize(width, height, channels)
	plane := width * height
	if channels == 1 {
		copy(m.Pix, chw[:plane])
		return
	}
	for c := 0; c < channels; c++ {
		src := chw[c*plane : (c+1)*plane]
		dst := m.Pix[c:]
		for i, v := range src {
			dst[i*channels] = v
		}
	}
}

// ToCHW writes the image channel-major into dst (which must hold at least
// Width*Height*Channels bytes) and returns the written part.
func (m *Image) ToCHW(dst []uint8) []uint8 {
	plane := m.Width * m.Height
	dst = dst[:plane*m.Channels]
	if m.Channels == 1 {
		copy(dst, m.Pix)
		return dst
	}
	for c := 0; c < m.Channels; c++ {
		out := dst[c*plane : (c+1)*plane]
		src := m.Pix[c:]
		for i := range out {
			out[i] = src[i*m.Channels]
		}
	}
	return dst
}
