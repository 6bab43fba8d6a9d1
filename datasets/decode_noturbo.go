//go:build !cgo || nolibjpeg

package datasets

const turboAvailable = false

// decodeJPEGTurbo is never called in builds without libjpeg-turbo.
func decodeJPEGTurbo(data []byte, dst *Image) error { return DecodeJPEGGo(data, dst) }
