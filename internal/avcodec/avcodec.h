#ifndef RILL_AVCODEC_H
#define RILL_AVCODEC_H
#include <libavcodec/avcodec.h>
#include <libswresample/swresample.h>
int rl_eagain(void);
int rl_eof(void);
void rl_quiet(void);
void rl_errstr(int err, char *buf, int n);
int rl_open_decoder(AVCodecContext **out, int id, const uint8_t *extra, int extra_len, int rate, int channels);
int rl_open_encoder(AVCodecContext **out, const char *name, int rate, int channels, int bitrate);
int rl_send_packet(AVCodecContext *ctx, AVPacket *pkt, const uint8_t *data, int n);
int rl_swr_open(SwrContext **out, int in_fmt, int in_rate, const AVChannelLayout *in_layout, int out_rate, int out_channels);
int rl_swr_open_flt(SwrContext **out, int in_rate, int in_channels, int out_rate, int out_channels);
int rl_swr_frame(SwrContext *s, AVFrame *f, float *out, int cap);
int rl_swr_flt(SwrContext *s, const float *in, int n, float *out, int cap);
int rl_frame_fmt(AVFrame *f);
int rl_frame_rate(AVFrame *f);
int rl_frame_channels(AVFrame *f);
AVChannelLayout *rl_frame_layout(AVFrame *f);
int rl_fill_frame(AVCodecContext *ctx, AVFrame *f, const float *in, int n, int64_t pts);
int rl_ctx_frame_size(AVCodecContext *ctx);
int rl_ctx_initial_padding(AVCodecContext *ctx);
uint8_t *rl_ctx_extradata(AVCodecContext *ctx);
int rl_ctx_extradata_size(AVCodecContext *ctx);
#endif
