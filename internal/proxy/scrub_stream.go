package proxy

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
)

// scrubWindow is the size of the window a response body is scanned in; the scrubber adds its longest form.
const scrubWindow = 32 << 10

var scrubBuffers = sync.Pool{New: func() any { b := make([]byte, scrubWindow+1024); return &b }}

// scrubReader streams a body with every form of the credential masked. A form split across reads is caught because
// the bytes that could begin one are held back until the next read decides (at most the longest form, minus one).
type scrubReader struct {
	rc io.ReadCloser
	s  *scrubber
	// trailer, when set, is scrubbed once the body has been read to its end, which is when the transport fills it.
	trailer http.Header

	bufp             *[]byte
	start, safe, end int // buf[start:safe] is masked and ready, buf[safe:end] waits for more input
	err              error
}

func newScrubReader(rc io.ReadCloser, s *scrubber, trailer http.Header) *scrubReader {
	return &scrubReader{rc: rc, s: s, trailer: trailer}
}

func (r *scrubReader) Read(p []byte) (int, error) {
	for {
		if r.start < r.safe {
			n := copy(p, (*r.bufp)[r.start:r.safe])
			r.start += n
			return n, nil
		}
		if r.err != nil {
			r.release()
			return 0, r.err
		}
		if r.bufp == nil {
			r.bufp = scrubBuffers.Get().(*[]byte)
			if len(*r.bufp) < scrubWindow+r.s.maxLen {
				b := make([]byte, scrubWindow+r.s.maxLen)
				r.bufp = &b
			}
		}
		buf := *r.bufp
		r.end = copy(buf, buf[r.safe:r.end])
		r.start, r.safe = 0, 0
		n, err := r.rc.Read(buf[r.end:])
		r.end += n
		r.s.mask(buf[:r.end])
		if err != nil {
			r.err = err
			r.safe = r.end
			if err == io.EOF && r.trailer != nil {
				r.s.header(r.trailer)
			}
			continue
		}
		r.safe = r.end - r.s.hold(buf[:r.end])
	}
}

func (r *scrubReader) release() {
	if r.bufp != nil {
		scrubBuffers.Put(r.bufp)
		r.bufp = nil
	}
}

func (r *scrubReader) Close() error {
	err := r.rc.Close()
	if r.err == nil {
		r.err = errors.New("body closed")
	}
	r.start, r.safe = 0, 0
	r.release()
	return err
}

// scrubConn is the target side of an upgraded (WebSocket) connection: what the target sends is scrubbed on its
// way to the client; what the client sends passes as it is. ReverseProxy needs it to be an io.ReadWriteCloser.
type scrubConn struct {
	*scrubReader
	w io.Writer
}

func (c *scrubConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close closes the connection only: ReverseProxy may close it while the copy from the target is still reading, so
// the window stays with the reader (and the garbage collector) instead of going back to the pool.
func (c *scrubConn) Close() error { return c.rc.Close() }

// errCompressedResponse refuses a body in an encoding the scrubber cannot read.
var errCompressedResponse = &refusedResponseError{"target answered in a content encoding the proxy cannot scan for the injected credential"}

// scrubResponse masks the credential in the response body (and trailers, and an upgraded stream). The request went
// out with Accept-Encoding: identity; a target that compresses anyway is decoded when the standard library can
// (gzip, deflate) and refused otherwise, since a compressed secret cannot be found.
func scrubResponse(resp *http.Response, s *scrubber) error {
	// ReverseProxy writes a 101's header itself, past the statusWriter that scrubs every other header.
	s.header(resp.Header)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = &scrubConn{scrubReader: newScrubReader(rwc, s, nil), w: rwc}
		}
		return nil
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		s.header(resp.Trailer)
		return nil
	}
	body := resp.Body
	switch ce := strings.ToLower(strings.TrimSpace(strings.Join(resp.Header.Values("Content-Encoding"), ","))); ce {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		body = &decodingReader{rc: body, deflate: ce == "deflate"}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	default:
		return errCompressedResponse
	}
	resp.Body = newScrubReader(body, s, resp.Trailer)
	return nil
}

// decodingReader decompresses a gzip or deflate (zlib) body, opening the decoder on the first read so that
// nothing is read from the target before the response is passed on.
type decodingReader struct {
	rc      io.ReadCloser
	deflate bool
	dec     io.Reader
	err     error
}

func (d *decodingReader) Read(p []byte) (int, error) {
	if d.dec == nil && d.err == nil {
		if d.deflate {
			d.dec, d.err = zlib.NewReader(d.rc)
		} else {
			d.dec, d.err = gzip.NewReader(d.rc)
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.dec.Read(p)
}

func (d *decodingReader) Close() error { return d.rc.Close() }
