//go:build cgo && !nolibjpeg

package datasets

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int eof_warning;
	char msg[JMSG_LENGTH_MAX];
} gsrmt_jerr;

static void gsrmt_error_exit(j_common_ptr cinfo) {
	gsrmt_jerr *e = (gsrmt_jerr *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, e->msg);
	longjmp(e->jump, 1);
}

static void gsrmt_emit_message(j_common_ptr cinfo, int level) {
	gsrmt_jerr *e = (gsrmt_jerr *)cinfo->err;
	// A premature end of data is a truncated file: report it as an error,
	// as Go's decoder and PIL do, instead of padding the image with gray.
	if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF && !e->eof_warning) {
		e->eof_warning = 1;
		(*cinfo->err->format_message)(cinfo, e->msg);
	}
}

// Result codes of gsrmt_jpeg_decode.
enum { GSRMT_OK = 0, GSRMT_ERR = 1, GSRMT_NEED_SPACE = 2, GSRMT_TRUNCATED = 3 };

// gsrmt_jpeg_decode decodes in[0:inlen] into out as packed RGB. When out is
// smaller than width*height*3 it stops after the header with
// GSRMT_NEED_SPACE and the size set, so that the caller can grow the buffer
// and call again. Nothing is retained after it returns.
static int gsrmt_jpeg_decode(const unsigned char *in, unsigned long inlen,
		unsigned char *out, size_t outcap, int *width, int *height, char *msg) {
	struct jpeg_decompress_struct cinfo;
	gsrmt_jerr jerr;
	unsigned char * volatile row4 = NULL;
	int code = GSRMT_OK;

	memset(&jerr, 0, sizeof jerr);
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = gsrmt_error_exit;
	jerr.pub.emit_message = gsrmt_emit_message;
	if (setjmp(jerr.jump)) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&cinfo);
		free(row4);
		return GSRMT_ERR;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, in, inlen);
	jpeg_read_header(&cinfo, TRUE);
	*width = (int)cinfo.image_width;
	*height = (int)cinfo.image_height;
	if ((size_t)cinfo.image_width * cinfo.image_height * 3 > outcap) {
		jpeg_destroy_decompress(&cinfo);
		return GSRMT_NEED_SPACE;
	}
	int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
	int inverted = cmyk && cinfo.saw_Adobe_marker;
	cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	jpeg_start_decompress(&cinfo);
	size_t stride = (size_t)cinfo.output_width * 3;
	if (cmyk) {
		row4 = malloc((size_t)cinfo.output_width * 4);
		if (row4 == NULL) {
			strcpy(msg, "out of memory");
			jpeg_destroy_decompress(&cinfo);
			return GSRMT_ERR;
		}
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		unsigned char *dst = out + (size_t)cinfo.output_scanline * stride;
		if (!cmyk) {
			JSAMPROW rows[1] = {dst};
			jpeg_read_scanlines(&cinfo, rows, 1);
			continue;
		}
		JSAMPROW rows[1] = {row4};
		jpeg_read_scanlines(&cinfo, rows, 1);
		for (JDIMENSION x = 0; x < cinfo.output_width; x++) {
			unsigned int c = row4[4*x], m = row4[4*x+1], y = row4[4*x+2], k = row4[4*x+3];
			if (!inverted) {
				c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k;
			}
			// Same rounding as Go's color.CMYKToRGB on the inverted values.
			unsigned int w = k * 0x101;
			dst[3*x] = (unsigned char)((c * 0x101 * w / 0xffff) >> 8);
			dst[3*x+1] = (unsigned char)((m * 0x101 * w / 0xffff) >> 8);
			dst[3*x+2] = (unsigned char)((y * 0x101 * w / 0xffff) >> 8);
		}
	}
	if (jerr.eof_warning) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		code = GSRMT_TRUNCATED;
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	free(row4);
	return code;
}

// gsrmt_jpeg_size reads the header of in[0:inlen] and sets the image size.
static int gsrmt_jpeg_size(const unsigned char *in, unsigned long inlen, int *width, int *height, char *msg) {
	struct jpeg_decompress_struct cinfo;
	gsrmt_jerr jerr;

	memset(&jerr, 0, sizeof jerr);
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = gsrmt_error_exit;
	jerr.pub.emit_message = gsrmt_emit_message;
	if (setjmp(jerr.jump)) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&cinfo);
		return GSRMT_ERR;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, in, inlen);
	jpeg_read_header(&cinfo, TRUE);
	*width = (int)cinfo.image_width;
	*height = (int)cinfo.image_height;
	jpeg_destroy_decompress(&cinfo);
	return GSRMT_OK;
}

// gsrmt_has_eoi reports whether an EOI marker (FF D9) follows offset from:
// entropy-coded data never holds one (a data FF byte is followed by 00 or a
// restart marker), so a single-scan JPEG that has one after its SOS header
// is not truncated.
static int gsrmt_has_eoi(const unsigned char *in, unsigned long inlen, unsigned long from) {
	for (unsigned long i = inlen; i >= from + 2; i--) {
		if (in[i - 2] == 0xFF && in[i - 1] == 0xD9) {
			return 1;
		}
	}
	return 0;
}

// gsrmt_jpeg_decode_region decodes the rows [ry, ry+rh) of in[0:inlen], at
// least the columns [rx, rx+rw) of them, into out as packed RGB: the
// columns are widened to whole iMCUs by jpeg_crop_scanline, *xoff (<= rx)
// and *outw say which ones out holds. Only the entropy decoding of the rows
// above the region is done (jpeg_skip_scanlines, up to one iMCU row above
// it), and nothing below it; the pixels are those of a full decode. A region past the image is an error;
// when out is too small it returns GSRMT_NEED_SPACE with *outw set.
static int gsrmt_jpeg_decode_region(const unsigned char *in, unsigned long inlen,
		unsigned char *out, size_t outcap, int rx, int ry, int rw, int rh,
		int *width, int *height, int *xoff, int *outw, char *msg) {
	struct jpeg_decompress_struct cinfo;
	gsrmt_jerr jerr;
	unsigned char * volatile row4 = NULL;
	int code = GSRMT_OK;

	memset(&jerr, 0, sizeof jerr);
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = gsrmt_error_exit;
	jerr.pub.emit_message = gsrmt_emit_message;
	if (setjmp(jerr.jump)) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&cinfo);
		free(row4);
		return GSRMT_ERR;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, in, inlen);
	jpeg_read_header(&cinfo, TRUE);
	unsigned long sos = (unsigned long)(cinfo.src->next_input_byte - in);
	*width = (int)cinfo.image_width;
	*height = (int)cinfo.image_height;
	if (rx < 0 || ry < 0 || rw <= 0 || rh <= 0 ||
			(unsigned long)rx + rw > cinfo.image_width || (unsigned long)ry + rh > cinfo.image_height) {
		snprintf(msg, JMSG_LENGTH_MAX, "region %dx%d at (%d,%d) is not inside the %ux%u image",
			rw, rh, rx, ry, cinfo.image_width, cinfo.image_height);
		jpeg_destroy_decompress(&cinfo);
		return GSRMT_ERR;
	}
	int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
	int inverted = cmyk && cinfo.saw_Adobe_marker;
	cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	jpeg_start_decompress(&cinfo);
	// Upsampling at the edges of a cropped or skipped region is not that of
	// a full decode: ask for a margin of 32 columns (an iMCU is at most 32
	// wide) and start decoding one whole iMCU row above the region, so
	// that the region's own pixels are exact.
	int left = rx - 32 > 0 ? rx - 32 : 0;
	int right = rx + rw + 32 < (int)cinfo.output_width ? rx + rw + 32 : (int)cinfo.output_width;
	JDIMENSION cx = (JDIMENSION)left, cw = (JDIMENSION)(right - left);
	if (cw < cinfo.output_width) {
		jpeg_crop_scanline(&cinfo, &cx, &cw);
	} else {
		cx = 0;
		cw = cinfo.output_width;
	}
	*xoff = (int)cx;
	*outw = (int)cw;
	size_t stride = (size_t)cw * 3;
	if (stride * (size_t)rh > outcap) {
		jpeg_destroy_decompress(&cinfo);
		return GSRMT_NEED_SPACE;
	}
	if (cmyk) {
		row4 = malloc((size_t)cw * 4);
		if (row4 == NULL) {
			strcpy(msg, "out of memory");
			jpeg_destroy_decompress(&cinfo);
			return GSRMT_ERR;
		}
	}
	int imcu = cinfo.max_v_samp_factor * DCTSIZE;
	int start = (ry / imcu - 1) * imcu;
	if (start > 0) {
		jpeg_skip_scanlines(&cinfo, (JDIMENSION)start);
	}
	while ((int)cinfo.output_scanline < ry) {
		JSAMPROW rows[1] = {cmyk ? row4 : out};
		jpeg_read_scanlines(&cinfo, rows, 1);
	}
	for (int y = 0; y < rh; y++) {
		unsigned char *dst = out + (size_t)y * stride;
		if (!cmyk) {
			JSAMPROW rows[1] = {dst};
			jpeg_read_scanlines(&cinfo, rows, 1);
			continue;
		}
		JSAMPROW rows[1] = {row4};
		jpeg_read_scanlines(&cinfo, rows, 1);
		for (JDIMENSION x = 0; x < cw; x++) {
			unsigned int c = row4[4*x], m = row4[4*x+1], yy = row4[4*x+2], k = row4[4*x+3];
			if (!inverted) {
				c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k;
			}
			unsigned int w = k * 0x101;
			dst[3*x] = (unsigned char)((c * 0x101 * w / 0xffff) >> 8);
			dst[3*x+1] = (unsigned char)((m * 0x101 * w / 0xffff) >> 8);
			dst[3*x+2] = (unsigned char)((yy * 0x101 * w / 0xffff) >> 8);
		}
	}
	if (cinfo.output_scanline < cinfo.output_height && !jpeg_has_multiple_scans(&cinfo) &&
			!gsrmt_has_eoi(in, inlen, sos)) {
		// The rows below the region are normally not decoded, but without an
		// EOI marker the file may be truncated: decode the rest to tell, as a
		// full decode would.
		if (row4 == NULL) {
			row4 = malloc((size_t)cw * 4);
			if (row4 == NULL) {
				strcpy(msg, "out of memory");
				jpeg_destroy_decompress(&cinfo);
				return GSRMT_ERR;
			}
		}
		while (cinfo.output_scanline < cinfo.output_height) {
			JSAMPROW rows[1] = {row4};
			jpeg_read_scanlines(&cinfo, rows, 1);
		}
	}
	if (jerr.eof_warning) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		code = GSRMT_TRUNCATED;
	}
	if (cinfo.output_scanline < cinfo.output_height) {
		jpeg_abort_decompress(&cinfo);
	} else {
		jpeg_finish_decompress(&cinfo);
	}
	jpeg_destroy_decompress(&cinfo);
	free(row4);
	return code;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

const turboAvailable = true

// decodeJPEGTurbo decodes a JPEG with libjpeg-turbo into dst as RGB.
func decodeJPEGTurbo(data []byte, dst *Image) error {
	if len(data) == 0 {
		return errors.New("empty JPEG data")
	}
	var w, h C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	for try := 0; try < 2; try++ {
		out := dst.Pix[:cap(dst.Pix)]
		var outPtr *C.uchar
		if len(out) > 0 {
			outPtr = (*C.uchar)(unsafe.Pointer(&out[0]))
		}
		code := C.gsrmt_jpeg_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
			outPtr, C.size_t(len(out)), &w, &h, &msg[0])
		switch code {
		case C.GSRMT_OK:
			dst.Width, dst.Height, dst.Channels = int(w), int(h), 3
			dst.Pix = out[:int(w)*int(h)*3]
			return nil
		case C.GSRMT_NEED_SPACE:
			if err := checkImageSize(int(w), int(h)); err != nil {
				return err
			}
			dst.Resize(int(w), int(h), 3)
		case C.GSRMT_TRUNCATED:
			return fmt.Errorf("truncated JPEG (libjpeg: %s)", C.GoString(&msg[0]))
		default:
			return fmt.Errorf("invalid JPEG (libjpeg: %s)", C.GoString(&msg[0]))
		}
	}
	return errors.New("JPEG size changed between two reads of its header")
}

// jpegSizeTurbo returns the size a JPEG's header declares.
func jpegSizeTurbo(data []byte) (width, height int, err error) {
	if len(data) == 0 {
		return 0, 0, errors.New("empty JPEG data")
	}
	var w, h C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	if C.gsrmt_jpeg_size((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), &w, &h, &msg[0]) != C.GSRMT_OK {
		return 0, 0, fmt.Errorf("invalid JPEG (libjpeg: %s)", C.GoString(&msg[0]))
	}
	return int(w), int(h), nil
}

// decodeJPEGRegionTurbo decodes the rows [y, y+h) of a JPEG, at least its
// columns [x, x+w), into dst as RGB: dst holds h rows of the image from
// column xoff <= x on, dst.Width >= x+w-xoff of them. The pixels are those
// of a full decode; only the rows down to the region's bottom are entropy
// decoded and only the region is converted to pixels.
func decodeJPEGRegionTurbo(data []byte, x, y, w, h int, dst *Image) (xoff int, err error) {
	if len(data) == 0 {
		return 0, errors.New("empty JPEG data")
	}
	var iw, ih, cx, cw C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	for try := 0; try < 2; try++ {
		out := dst.Pix[:cap(dst.Pix)]
		var outPtr *C.uchar
		if len(out) > 0 {
			outPtr = (*C.uchar)(unsafe.Pointer(&out[0]))
		}
		code := C.gsrmt_jpeg_decode_region((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
			outPtr, C.size_t(len(out)), C.int(x), C.int(y), C.int(w), C.int(h), &iw, &ih, &cx, &cw, &msg[0])
		switch code {
		case C.GSRMT_OK:
			dst.Width, dst.Height, dst.Channels = int(cw), h, 3
			dst.Pix = out[:int(cw)*h*3]
			return int(cx), nil
		case C.GSRMT_NEED_SPACE:
			if err := checkImageSize(int(iw), int(ih)); err != nil {
				return 0, err
			}
			dst.Resize(int(cw), h, 3)
		case C.GSRMT_TRUNCATED:
			return 0, fmt.Errorf("truncated JPEG (libjpeg: %s)", C.GoString(&msg[0]))
		default:
			return 0, fmt.Errorf("invalid JPEG (libjpeg: %s)", C.GoString(&msg[0]))
		}
	}
	return 0, errors.New("JPEG size changed between two reads of its header")
}
