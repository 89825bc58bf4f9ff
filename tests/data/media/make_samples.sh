#!/bin/sh
# Remake the tiny media samples the media tests sniff and send: one per format the gateway promises,
# plus a few it must refuse. Needs ffmpeg, sox and a Python with Pillow and pillow-heif
# (PYTHON=.venv/bin/python sh tests/data/media/make_samples.sh). Output is deterministic enough to
# commit; the tests only depend on each file's format, not on its exact bytes.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
FF="ffmpeg -hide_banner -loglevel error -y -bitexact"
V="-f lavfi -i testsrc=size=16x16:rate=4:duration=0.5"
A="-f lavfi -i sine=frequency=440:sample_rate=8000:duration=0.2"

# Images: Pillow for png/jpeg/webp/gif/bmp/tiff and PDF, pillow-heif for HEIC. A HEIF file with the
# generic `mif1` major brand is the HEIC file with its ftyp brand rewritten (what many cameras write).
"$PYTHON" - <<'PY'
from PIL import Image
import pillow_heif

pillow_heif.register_heif_opener()
img = Image.new("RGB", (8, 8), (200, 30, 30))
img.save("image.png")
img.save("image.jpg", quality=50)
img.save("image.webp", quality=50)
img.save("image.gif")
img.save("image.bmp")
img.save("image.tiff")
img.save("document.pdf")
img.save("image.heic", quality=30)
data = bytearray(open("image.heic", "rb").read())
assert data[4:12] == b"ftypheic", data[:16]
data[8:12] = b"mif1"
open("image.heif", "wb").write(bytes(data))
PY

# Audio.
$FF $A -c:a pcm_s16le audio.wav
$FF $A -c:a libmp3lame -b:a 8k audio.mp3
$FF $A -c:a libmp3lame -b:a 8k -id3v2_version 0 -write_xing 0 audio_frames.mp3
$FF $A -c:a pcm_s16be audio.aiff
$FF $A -c:a aac -b:a 8k -f adts audio.aac
$FF $A -c:a libvorbis -q:a 0 audio.ogg
$FF $A -c:a flac audio.flac
$FF $A -c:a aac -b:a 8k audio.m4a
$FF $A -c:a wmav2 -b:a 24k audio.wma
sox -n -r 8000 -c 1 -b 16 audio_sox.wav synth 0.1 sine 440

# Video (no audio track: smaller).
$FF $V -c:v libx264 -pix_fmt yuv420p -preset ultrafast video.mp4
$FF $V -c:v libx264 -pix_fmt yuv420p -preset ultrafast -f mov video.mov
$FF $V -c:v h263 -s 128x96 -f 3gp video.3gp
$FF $V -c:v mpeg1video -r 25 -f mpeg video.mpeg
$FF $V -c:v mpeg2video -r 25 -f vob video.mpg
$FF $V -c:v mpeg4 -f avi video.avi
$FF $V -c:v flv1 -f flv video.flv
$FF $V -c:v libvpx -b:v 20k -f webm video.webm
$FF $V -c:v wmv2 -f asf video.wmv
$FF $V -c:v libx264 -pix_fmt yuv420p -preset ultrafast -f matroska video.mkv
$FF $V -c:v libtheora -f ogg video.ogv
$FF $V -c:v mpeg2video -r 25 -f mpegts video.ts
ls -l
