package main

import (
	"errors"
	"reflect"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{"ffmpeg -i [url] -c copy out.flv", []string{"ffmpeg", "-i", "[url]", "-c", "copy", "out.flv"}, nil},
		{"  touch\t'a b'  ", []string{"touch", "a b"}, nil},
		{`echo "x \"y\" \\z" 'q"r'`, []string{"echo", `x "y" \z`, `q"r`}, nil},
		{`echo a\ b ''`, []string{"echo", "a b", ""}, nil},
		{`echo "unterminated`, nil, errUnterminated},
		{`echo 'unterminated`, nil, errUnterminated},
		{`echo \`, nil, errTrailingEscape},
		{"   ", nil, errEmptyCommand},
		{"echo $(id) ; rm -rf / | x", []string{"echo", "$(id)", ";", "rm", "-rf", "/", "|", "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitCommand(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	v := vars{"vhost": "__defaultVhost__", "app": "live/sub", "stream": "cam-1.x", "param": "?token=a%20b&vhost=x", "engine": "sd"}
	tests := []struct {
		tmpl string
		v    vars
		want string
		bad  bool
	}{
		{"rtmp://h/[app]/[stream]_[engine]?vhost=[vhost]", v, "rtmp://h/live/sub/cam-1.x_sd?vhost=__defaultVhost__", false},
		{"[stream].marker", v, "cam-1.x.marker", false},
		{"[0:v]scale=320:180[out]", v, "[0:v]scale=320:180[out]", false},
		{"-metadata=[stream]", v, "-metadata=cam-1.x", false},
		{"x[param]", v, "x?token=a%20b&vhost=x", false},
		{"[unclosed", v, "[unclosed", false},
		{"[stream]", vars{"stream": "-rf"}, "", true},
		{"[stream]", vars{"stream": "a b"}, "", true},
		{"[stream]", vars{"stream": "a;b"}, "", true},
		{"[stream]", vars{"stream": ".."}, "", true},
		{"[stream]", vars{"stream": "a/b"}, "", true},
		{"[app]", vars{"app": "live/../etc"}, "", true},
		{"[app]", vars{"app": "/live"}, "", true},
		{"[param]", vars{"param": "?a=$(id)"}, "", true},
		{"[param]", vars{"param": "?a=`id`"}, "", true},
		{"[param]", vars{"param": "?a=b\nc"}, "", true},
		{"[vhost]", vars{"vhost": "a'b"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			got, err := expand(tt.tmpl, tt.v)
			if tt.bad {
				if !errors.Is(err, errUnsafeValue) {
					t.Fatalf("got %q, %v; want an unsafe value error", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestExpandArgsKeepsValuesInOneArgument(t *testing.T) {
	argv, _ := splitCommand("prog --name=[stream] [param]")
	got, err := expandArgs(argv, vars{"stream": "s", "param": "?a=1&b=2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"prog", "--name=s", "?a=1&b=2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func FuzzSplitExpand(f *testing.F) {
	f.Add("ffmpeg -i [url] '[stream] x' \"[app]\"", "live", "s1")
	f.Add(`a\ b "c\"d"`, "a/b", "-x")
	f.Fuzz(func(t *testing.T, line, app, stream string) {
		argv, err := splitCommand(line)
		if err != nil {
			return
		}
		out, err := expandArgs(argv, vars{"app": app, "stream": stream})
		if err != nil {
			return
		}
		if len(out) != len(argv) {
			t.Fatalf("%d arguments became %d", len(argv), len(out))
		}
		for i, a := range out {
			if len(a) > 0 && a[0] == '-' && (len(argv[i]) == 0 || argv[i][0] != '-') {
				t.Fatalf("argument %q became option %q", argv[i], a)
			}
		}
	})
}
