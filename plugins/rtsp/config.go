package main

import (
	"errors"
	"time"

	"github.com/rill-media/rill/sdk"
)

const defaultVhost = "__defaultVhost__"

// defaultAddr is RTSP's well-known port; SRS 7 uses 8554, set listen for it.
const defaultAddr = "0.0.0.0:554"

// settings is the plugin block: plugin "rtsp" { ... }; `listen` is the
// core's (it binds the TCP socket and hands it over).
type settings struct {
	// PlayWait is how long a DESCRIBE waits for a publisher (default 5s).
	PlayWait sdk.Duration `json:"play_wait"`
	// IdleTimeout ends a publisher that sends no RTP for this long, over
	// UDP or TCP (default 10s), and a connection that neither publishes
	// nor plays and sends no request for this long.
	IdleTimeout sdk.Duration `json:"idle_timeout"`
	// MaxPlayers caps the RTSP players of the process (default 2000).
	MaxPlayers int `json:"max_players"`
}

func defaultSettings() settings {
	return settings{
		PlayWait:    sdk.Duration(5 * time.Second),
		IdleTimeout: sdk.Duration(10 * time.Second),
		MaxPlayers:  2000,
	}
}

type config struct {
	settings
	vhosts map[string]bool
}

func (c *config) vhost(name string) (string, bool) {
	if name == "" {
		name = defaultVhost
	}
	if e, ok := c.vhosts[name]; ok {
		return name, e
	}
	return defaultVhost, c.vhosts[defaultVhost] || len(c.vhosts) == 0
}

func parseConfig(cfg sdk.Config) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]bool{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	if c.IdleTimeout.Std() < 100*time.Millisecond {
		errs = append(errs, &sdk.ConfigError{Key: []string{"idle_timeout"}, Msg: "must be at least 100ms"})
	}
	if c.MaxPlayers < 1 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_players"}, Msg: "must be at least 1"})
	}
	for _, v := range cfg.Vhosts {
		c.vhosts[v.Name] = v.Enabled
	}
	return c, errors.Join(errs...)
}
