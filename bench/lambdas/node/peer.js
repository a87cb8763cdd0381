// The Node peers of our Rust Lambdas, driven by scripts/bench-lambdas: the libraries the
// original Lambdas used (sharp, aws-jwt-verify, @aws-sdk/s3-request-presigner), doing the same
// work on the same inputs. Throughput modes print {"ops": N, "seconds": S}; cold modes do one
// request the way the Lambda would, from a fresh process, and print "ok".
"use strict";
const fs = require("node:fs");
const crypto = require("node:crypto");

const [mode, ...args] = process.argv.slice(2);
const REGION = "us-east-1";

function thumbnail(input) {
  const sharp = require("sharp");
  // libvips uses every core for one image by default; SHARP_CONCURRENCY=1 is one core, as a
  // 1 GB Lambda (about 0.6 vCPU) has.
  if (process.env.SHARP_CONCURRENCY) sharp.concurrency(Number(process.env.SHARP_CONCURRENCY));
  return sharp(input)
    .rotate() // EXIF orientation
    .resize(512, 512, { fit: "cover", position: "centre" })
    .flatten({ background: "#ffffff" })
    .jpeg()
    .toBuffer();
}

function verifier(pool, client) {
  const { CognitoJwtVerifier } = require("aws-jwt-verify");
  return CognitoJwtVerifier.create({ userPoolId: pool, tokenUse: "access", clientId: client });
}

async function cachedVerifier(jwksUrl, pool, client) {
  const v = verifier(pool, client);
  const jwks = await (await fetch(jwksUrl)).json();
  v.cacheJwks(jwks); // the pool's JWKS, fetched from jwksUrl instead of cognito-idp
  return v;
}

function signer() {
  const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");
  const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");
  const s3 = new S3Client({
    region: REGION,
    credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
    requestChecksumCalculation: "WHEN_REQUIRED", // as ours: no checksum in the URL
  });
  return (key) =>
    getSignedUrl(s3, new PutObjectCommand({ Bucket: "cruddur-uploaded-avatars", Key: key, ContentType: "image/jpeg" }), {
      expiresIn: 300,
    });
}

async function timed(n, op) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await op(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ ops: n, seconds }));
}

function b64url(x) {
  return Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
}

async function main() {
  switch (mode) {
    case "make-photo": {
      // A photo-like image: smooth light and colour with sensor noise. FORMAT: jpeg (quality
      // 90), jpeg-rotated (the same stored sideways with EXIF orientation 6, as phones write
      // portraits), png-alpha (RGBA, a transparent vignette), webp (quality 90).
      const [out, width = "4000", height = "3000", format = "jpeg"] = args;
      const [w, h] = [Number(width), Number(height)];
      const channels = format === "png-alpha" ? 4 : 3;
      const raw = Buffer.alloc(w * h * channels);
      let seed = 42;
      const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 24) - 12;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const i = (y * w + x) * channels;
          const light = 128 + 90 * Math.sin(x / 310) * Math.cos(y / 270);
          raw[i] = Math.max(0, Math.min(255, light + 40 * Math.sin(y / 90) + noise()));
          raw[i + 1] = Math.max(0, Math.min(255, light * 0.8 + 30 * Math.cos(x / 70) + noise()));
          raw[i + 2] = Math.max(0, Math.min(255, 255 - light + noise()));
          if (channels === 4) {
            const d = Math.hypot(x - w / 2, y - h / 2) / (Math.min(w, h) / 2);
            raw[i + 3] = Math.max(0, Math.min(255, 255 * (1.2 - d)));
          }
        }
      const sharp = require("sharp");
      const img = sharp(raw, { raw: { width: w, height: h, channels } });
      if (format === "jpeg") await img.jpeg({ quality: 90 }).toFile(out);
      else if (format === "jpeg-rotated") await img.rotate(-90).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(out);
      else if (format === "png-alpha") await img.png().toFile(out);
      else if (format === "webp") await img.webp({ quality: 90 }).toFile(out);
      else throw new Error(`unknown format ${format}`);
      break;
    }
    case "make-token": {
      // An access token as Cognito issues it, RS256-signed with the fixture key.
      const [keyPem, kid, pool, client, out] = args;
      const now = Math.floor(Date.now() / 1000);
      const header = { kid, alg: "RS256" };
      const claims = {
        sub: "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b", iss: `https://cognito-idp.${REGION}.amazonaws.com/${pool}`,
        client_id: client, origin_jti: crypto.randomUUID(), event_id: crypto.randomUUID(), token_use: "access",
        scope: "aws.cognito.signin.user.admin", auth_time: now, exp: now + 3600, iat: now, jti: crypto.randomUUID(),
        username: "andrew",
      };
      const input = `${b64url(header)}.${b64url(claims)}`;
      const sig = crypto.sign("RSA-SHA256", Buffer.from(input), fs.readFileSync(keyPem)).toString("base64url");
      fs.writeFileSync(out, `${input}.${sig}`);
      break;
    }
    case "thumbnail": {
      // THUMBNAIL PHOTO N [OUT]: the last thumbnail is written to OUT, for size and SSIM.
      const [photo, n, out] = args;
      const input = fs.readFileSync(photo);
      const first = await thumbnail(input); // warm-up, as the Rust side's first call is not special either
      if (out) fs.writeFileSync(out, first);
      await timed(Number(n), () => thumbnail(input));
      break;
    }
    case "authorize": {
      const [jwksUrl, pool, client, tokenFile, n] = args;
      const token = fs.readFileSync(tokenFile, "utf8").trim();
      const v = await cachedVerifier(jwksUrl, pool, client);
      await v.verify(token);
      await timed(Number(n), () => v.verify(token));
      break;
    }
    case "presign": {
      const sign = signer();
      await sign("warm-up.jpg");
      await timed(Number(args[0]), (i) => sign(`7a3e0c4e-8d7f-4a2b-9f1e-${String(i).padStart(12, "0")}.jpg`));
      break;
    }
    case "cold-thumbnail": {
      // As the original Lambda: get the upload from S3, thumbnail it, put the result.
      const [endpoint, bucket, key, dest] = args;
      const { S3Client, GetObjectCommand, PutObjectCommand } = require("@aws-sdk/client-s3");
      const s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true });
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const out = await thumbnail(Buffer.from(await got.Body.transformToByteArray()));
      await s3.send(new PutObjectCommand({ Bucket: dest, Key: `avatars/processed/node-${key}`, Body: out, ContentType: "image/jpeg" }));
      console.log("ok");
      break;
    }
    case "cold-authorize": {
      const [jwksUrl, pool, client, tokenFile] = args;
      const v = await cachedVerifier(jwksUrl, pool, client);
      await v.verify(fs.readFileSync(tokenFile, "utf8").trim());
      console.log("ok");
      break;
    }
    case "cold-presign": {
      await signer()("7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b.jpg");
      console.log("ok");
      break;
    }
    case "runtime-thumbnail": {
      // The original Lambda as deployed: a Runtime API loop (AWS_LAMBDA_RUNTIME_API), each S3
      // event's object read, thumbnailed and written back, as the Rust bootstrap does.
      const [endpoint, dest] = args;
      const { S3Client, GetObjectCommand, PutObjectCommand } = require("@aws-sdk/client-s3");
      const s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true });
      const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation`;
      for (;;) {
        const next = await fetch(`${api}/next`);
        const id = next.headers.get("lambda-runtime-aws-request-id");
        const event = await next.json();
        const written = [];
        for (const record of event.Records) {
          const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
          const got = await s3.send(new GetObjectCommand({ Bucket: record.s3.bucket.name, Key: key }));
          const out = await thumbnail(Buffer.from(await got.Body.transformToByteArray()));
          const to = `avatars/processed/node-${key}`;
          await s3.send(new PutObjectCommand({ Bucket: dest, Key: to, Body: out, ContentType: "image/jpeg" }));
          written.push(to);
        }
        await fetch(`${api}/${id}/response`, { method: "POST", body: JSON.stringify(written) });
      }
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
