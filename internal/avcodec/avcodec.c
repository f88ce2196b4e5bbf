// C side of package avcodec: thin helpers over FFmpeg's API so the Go side
// never indexes C arrays of pointers or builds them from Go memory.
#include <errno.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include "avcodec.h"

int rl_eagain(void) { return AVERROR(EAGAIN); }
int rl_eof(void) { return AVERROR_EOF; }

void rl_quiet(void) { av_log_set_level(AV_LOG_QUIET); }

void rl_errstr(int err, char *buf, int n) { av_strerror(err, buf, n); }

// rl_open_decoder opens a decoder for codec id.
int rl_open_decoder(AVCodecContext **out, int id, const uint8_t *extra, int extra_len, int rate, int channels) {
	// Opus is decoded by libopus (the reference decoder) where FFmpeg has it.
	const AVCodec *c = id == AV_CODEC_ID_OPUS ? avcodec_find_decoder_by_name("libopus") : NULL;
	if (!c) c = avcodec_find_decoder(id);
	if (!c) return AVERROR_DECODER_NOT_FOUND;
	AVCodecContext *ctx = avcodec_alloc_context3(c);
	if (!ctx) return AVERROR(ENOMEM);
	if (extra_len > 0) {
		ctx->extradata = av_mallocz(extra_len + AV_INPUT_BUFFER_PADDING_SIZE);
		if (!ctx->extradata) { avcodec_free_context(&ctx); return AVERROR(ENOMEM); }
		memcpy(ctx->extradata, extra, extra_len);
		ctx->extradata_size = extra_len;
	}
	if (rate > 0) ctx->sample_rate = rate;
	if (channels > 0) av_channel_layout_default(&ctx->ch_layout, channels);
	int err = avcodec_open2(ctx, c, NULL);
	if (err < 0) { avcodec_free_context(&ctx); return err; }
	*out = ctx;
	return 0;
}

int rl_open_encoder(AVCodecContext **out, const char *name, int rate, int channels, int bitrate) {
	const AVCodec *c = avcodec_find_encoder_by_name(name);
	if (!c) return AVERROR_ENCODER_NOT_FOUND;
	AVCodecContext *ctx = avcodec_alloc_context3(c);
	if (!ctx) return AVERROR(ENOMEM);
	ctx->sample_rate = rate;
	av_channel_layout_default(&ctx->ch_layout, channels);
	ctx->bit_rate = bitrate;
	ctx->time_base = (AVRational){1, rate};
	// The first sample format the encoder takes: fltp for aac, s16 or flt for libopus.
	ctx->sample_fmt = c->sample_fmts ? c->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
	if (c->sample_fmts) {
		for (const enum AVSampleFormat *f = c->sample_fmts; *f != AV_SAMPLE_FMT_NONE; f++) {
			if (*f == AV_SAMPLE_FMT_FLT || *f == AV_SAMPLE_FMT_FLTP) { ctx->sample_fmt = *f; break; }
		}
	}
	ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	int err = avcodec_open2(ctx, c, NULL);
	if (err < 0) { avcodec_free_context(&ctx); return err; }
	*out = ctx;
	return 0;
}

int rl_send_packet(AVCodecContext *ctx, AVPacket *pkt, const uint8_t *data, int n) {
	av_packet_unref(pkt);
	int err = av_new_packet(pkt, n);
	if (err < 0) return err;
	memcpy(pkt->data, data, n);
	return avcodec_send_packet(ctx, pkt);
}

// rl_swr_open makes a resampler from (in_fmt, in_rate, in_layout) to
// interleaved float at (out_rate, out_channels).
int rl_swr_open(SwrContext **out, int in_fmt, int in_rate, const AVChannelLayout *in_layout, int out_rate, int out_channels) {
	AVChannelLayout ol;
	av_channel_layout_default(&ol, out_channels);
	SwrContext *s = NULL;
	int err = swr_alloc_set_opts2(&s, (AVChannelLayout *)&ol, AV_SAMPLE_FMT_FLT, out_rate, (AVChannelLayout *)in_layout, in_fmt, in_rate, 0, NULL);
	av_channel_layout_uninit(&ol);
	if (err < 0) return err;
	err = swr_init(s);
	if (err < 0) { swr_free(&s); return err; }
	*out = s;
	return 0;
}

int rl_swr_open_flt(SwrContext **out, int in_rate, int in_channels, int out_rate, int out_channels) {
	AVChannelLayout il;
	av_channel_layout_default(&il, in_channels);
	int err = rl_swr_open(out, AV_SAMPLE_FMT_FLT, in_rate, &il, out_rate, out_channels);
	av_channel_layout_uninit(&il);
	return err;
}

// rl_swr_frame converts a decoded frame into out (interleaved float, room
// for cap samples per channel); returns samples per channel written.
int rl_swr_frame(SwrContext *s, AVFrame *f, float *out, int cap) {
	uint8_t *o[1] = {(uint8_t *)out};
	return swr_convert(s, o, cap, (const uint8_t **)f->extended_data, f->nb_samples);
}

int rl_swr_flt(SwrContext *s, const float *in, int n, float *out, int cap) {
	uint8_t *o[1] = {(uint8_t *)out};
	const uint8_t *i[1] = {(const uint8_t *)in};
	return swr_convert(s, o, cap, n ? i : NULL, n);
}

int rl_frame_fmt(AVFrame *f) { return f->format; }
int rl_frame_rate(AVFrame *f) { return f->sample_rate; }
int rl_frame_channels(AVFrame *f) { return f->ch_layout.nb_channels; }
AVChannelLayout *rl_frame_layout(AVFrame *f) { return &f->ch_layout; }

// rl_fill_frame prepares f for n samples per channel of interleaved float
// in, converted to the encoder's sample format.
int rl_fill_frame(AVCodecContext *ctx, AVFrame *f, const float *in, int n, int64_t pts) {
	av_frame_unref(f);
	f->format = ctx->sample_fmt;
	f->sample_rate = ctx->sample_rate;
	f->nb_samples = n;
	int err = av_channel_layout_copy(&f->ch_layout, &ctx->ch_layout);
	if (err < 0) return err;
	err = av_frame_get_buffer(f, 0);
	if (err < 0) return err;
	int ch = ctx->ch_layout.nb_channels;
	switch (ctx->sample_fmt) {
	case AV_SAMPLE_FMT_FLT:
		memcpy(f->data[0], in, sizeof(float) * n * ch);
		break;
	case AV_SAMPLE_FMT_FLTP:
		for (int c = 0; c < ch; c++) {
			float *p = (float *)f->extended_data[c];
			for (int i = 0; i < n; i++) p[i] = in[i * ch + c];
		}
		break;
	case AV_SAMPLE_FMT_S16: {
		int16_t *p = (int16_t *)f->data[0];
		for (int i = 0; i < n * ch; i++) {
			float v = in[i] * 32767.0f;
			if (v > 32767.0f) v = 32767.0f;
			if (v < -32768.0f) v = -32768.0f;
			p[i] = (int16_t)v;
		}
		break;
	}
	default:
		return AVERROR(EINVAL);
	}
	f->pts = pts;
	return 0;
}

int rl_ctx_frame_size(AVCodecContext *ctx) { return ctx->frame_size; }
int rl_ctx_initial_padding(AVCodecContext *ctx) { return ctx->initial_padding; }
uint8_t *rl_ctx_extradata(AVCodecContext *ctx) { return ctx->extradata; }
int rl_ctx_extradata_size(AVCodecContext *ctx) { return ctx->extradata_size; }
