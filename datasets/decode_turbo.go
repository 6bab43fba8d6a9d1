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
