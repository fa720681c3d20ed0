#!/usr/bin/env bash
# The app's bundled sample video, www/samples/room.webm: 8 s of a camera walking into a small room
# (checkered floor, a window, a door, a picture and a table), ray-cast per pixel by ffmpeg's geq
# filter, 320x240 at 10 fps, VP9, BT.601 tagged, under 400 KB. Bitexact and single-threaded, so a
# re-run gives the committed file back. Needs ffmpeg with libvpx.
set -euo pipefail
cd "$(dirname "$0")/.."
out=www/samples/room.webm
mkdir -p "$(dirname "$out")"

# Room: x in [-2,2] (left/right walls), y in [0,2.6] (floor/ceiling), z in [-3,3] (front/back walls).
# Camera at (OX,OY,OZ) walks in along z while turning left and right (yaw A).
A='(0.55*sin(2*PI*T/8))'
OX='(0.4*sin(2*PI*T/8))'
OY='1.3'
OZ='(-2.4+0.22*T)'
# Registers: 0..2 ray direction, 3 nearest hit distance, 4 material, 5..7 hit point, 8..9 scratch.
ray="st(0,((X+0.5-W/2)/200)*cos($A)+sin($A));st(1,(H/2-Y-0.5)/200);st(2,cos($A)-((X+0.5-W/2)/200)*sin($A));"
walls="st(3,if(gt(ld(0),0),(2-$OX)/ld(0),(-2-$OX)/ld(0)));st(4,if(gt(ld(0),0),4,3));"
walls+="st(8,if(gt(ld(1),0),(2.6-$OY)/ld(1),(0-$OY)/ld(1)));if(lt(ld(8),ld(3)),st(3,ld(8))+st(4,if(gt(ld(1),0),2,1)));"
walls+="st(8,if(gt(ld(2),0),(3-$OZ)/ld(2),(-3-$OZ)/ld(2)));if(lt(ld(8),ld(3)),st(3,ld(8))+st(4,if(gt(ld(2),0),5,6)));"
# Table: the box [0.3,1.3] x [0,0.8] x [0.4,1.4] (slab test: nearest entry < farthest exit).
table="st(8,max(max(min((0.3-$OX)/ld(0),(1.3-$OX)/ld(0)),min((0-$OY)/ld(1),(0.8-$OY)/ld(1))),min((0.4-$OZ)/ld(2),(1.4-$OZ)/ld(2))));"
table+="st(9,min(min(max((0.3-$OX)/ld(0),(1.3-$OX)/ld(0)),max((0-$OY)/ld(1),(0.8-$OY)/ld(1))),max((0.4-$OZ)/ld(2),(1.4-$OZ)/ld(2))));"
table+="if(lt(ld(8),ld(9))*gt(ld(8),0)*lt(ld(8),ld(3)),st(3,ld(8))+st(4,7));"
hit="st(5,$OX+ld(3)*ld(0));st(6,$OY+ld(3)*ld(1));st(7,$OZ+ld(3)*ld(2));st(8,1/(1+0.03*ld(3)*ld(3)));"
prelude="$ray$walls$table$hit"
within() { echo "(gte(ld($1),$2)*lte(ld($1),$3))"; } # register $1 in [$2, $3]
checker='mod(floor(ld(5)*2)+floor(ld(7)*2)+100,2)'
window="$(within 7 -0.5 1.5)*$(within 6 1 2)"
picture="$(within 7 -1.6 -0.4)*$(within 6 1.2 1.9)"
door="$(within 5 -1.4 -0.6)*lt(ld(6),2)"
top='lt(abs(ld(6)-0.8),0.001)'
# One channel: base colour per material (floor, ceiling, left, right, back, front wall, table), shaded by distance.
channel() { # floor0 floor1 ceiling wall_l window wall_r picture wall_b door wall_f table
  echo "$prelude clip(ld(8)*if(eq(ld(4),1),$1+($2-$1)*$checker,if(eq(ld(4),2),$3,if(eq(ld(4),3),if($window,$5,$4),if(eq(ld(4),4),if($picture,$7,$6),if(eq(ld(4),5),if($door,$9,$8),if(eq(ld(4),6),${10},${11}*(1+0.3*$top))))))),0,255)"
}
r=$(channel 150 200 235 170 150 225 70 170 110 180 160)
g=$(channel 105 150 232 185 200 212 100 205 75 180 70)
b=$(channel 70 100 225 210 250 160 150 170 45 180 50)

ffmpeg -v error -y -f lavfi -i "color=c=black:s=320x240:r=10:d=8,format=gbrp,geq=r='$r':g='$g':b='$b',format=yuv420p" \
  -c:v libvpx-vp9 -b:v 300k -crf 34 -g 20 -threads 1 -row-mt 0 \
  -colorspace smpte170m -color_primaries smpte170m -color_trc smpte170m -color_range tv \
  -fflags +bitexact -flags:v +bitexact "$out"
size=$(stat -c %s "$out")
echo "$out: $size bytes"
if [ "$size" -ge 409600 ]; then echo "the sample is over 400 KB" >&2; exit 1; fi
