//go:build !cgo || nolibjpeg

package datasets

import "errors"

const turboAvailable = false

// decodeJPEGTurbo is never called in builds without libjpeg-turbo.
func decodeJPEGTurbo(data []byte, dst *Image) error { return DecodeJPEGGo(data, dst) }

// jpegSizeTurbo is never called in builds without libjpeg-turbo.
func jpegSizeTurbo(data []byte) (width, height int, err error) {
	return 0, 0, errors.New("built without libjpeg-turbo")
}

// decodeJPEGRegionTurbo is never called in builds without libjpeg-turbo.
func decodeJPEGRegionTurbo(data []byte, x, y, w, h int, dst *Image) (xoff int, err error) {
	return 0, errors.New("built without libjpeg-turbo")
}
