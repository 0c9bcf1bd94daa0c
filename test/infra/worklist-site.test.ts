import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { App, Stack, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { RestApi } from "aws-cdk-lib/aws-apigateway";
import { Certificate } from "aws-cdk-lib/aws-certificatemanager";
import { CachePolicy, OriginRequestPolicy } from "aws-cdk-lib/aws-cloudfront";
import { UserPool } from "aws-cdk-lib/aws-cognito";
import { Key } from "aws-cdk-lib/aws-kms";
import type { Asset } from "aws-cdk-lib/aws-s3-assets";
import { describe, expect, it } from "vitest";
import {
  API_PATH_PREFIX,
  STRIP_API_PREFIX_CODE,
  WORKLIST_CONTENT_SECURITY_POLICY,
  WORKLIST_DIR,
  WorklistSite,
} from "../../infra/worklist-site.js";
import { CONTENT_SECURITY_POLICY } from "../../scripts/lib/worklist-server.js";
import { arn, buildStack, logicalId, ref } from "./stack-fixture.js";

// One synthesized institution stack for the whole file (bundling skipped: the page build is checked in institution-stack.test.ts).
const { app, stack, t } = buildStack();
const site = stack.worklistSite;
const distributionId = logicalId(site.distribution);
const distributionDomain = { "Fn::GetAtt": [distributionId, "DomainName"] };
const siteUrl = { "Fn::Join": ["", ["https://", distributionDomain, "/"]] };
const distributionConfig = () => Object.values(t.findResources("AWS::CloudFront::Distribution"))[0]?.Properties.DistributionConfig;
const apiBehaviour = () =>
  distributionConfig().CacheBehaviors.find((b: { PathPattern: string }) => b.PathPattern === `${API_PATH_PREFIX}/*`);
const originById = (id: string) => distributionConfig().Origins.find((o: { Id: string }) => o.Id === id);

/** config.json as deployed: the jsonData asset with its deploy-time markers rendered as `${LogicalId}` / `${LogicalId.Attr}`. */
const deployedConfig = (): Record<string, unknown> => {
  const deployment = site.node.findChild("Deployment");
  const asset = deployment.node.findChild("Asset2") as Asset;
  let text = readFileSync(join(app.outdir, asset.assetPath, "config.json"), "utf8");
  const custom = Object.values(t.findResources("Custom::CDKBucketDeployment"))[0];
  const markers = custom?.Properties.SourceMarkers[1] as Record<string, { Ref?: string; "Fn::GetAtt"?: [string, string] }>;
  for (const [marker, value] of Object.entries(markers)) {
    const rendered = value.Ref ? `\${${value.Ref}}` : `\${${value["Fn::GetAtt"]?.join(".")}}`;
    text = text.split(marker).join(rendered);
  }
  return JSON.parse(text) as Record<string, unknown>;
};

/** An Fn::Join of strings, Refs and GetAtts as one string with `${LogicalId}` / `${LogicalId.Attr}` in their places. */
const renderJoin = (value: unknown): string => {
  if (typeof value === "string") return value;
  const v = value as { Ref?: string; "Fn::GetAtt"?: string[]; "Fn::Join"?: [string, unknown[]] };
  if (v.Ref) return `\${${v.Ref}}`;
  if (v["Fn::GetAtt"]) return `\${${v["Fn::GetAtt"].join(".")}}`;
  if (v["Fn::Join"]) return v["Fn::Join"][1].map(renderJoin).join(v["Fn::Join"][0]);
  throw new Error(`cannot render ${JSON.stringify(value)}`);
};

describe("worklist site: CloudFront distribution", () => {
  it("serves the private bucket through origin access control, HTTPS (redirected), index.html at /, price class 100, logged", () => {
    const config = distributionConfig();
    expect(config).toMatchObject({
      DefaultRootObject: "index.html",
      PriceClass: "PriceClass_100",
      Enabled: true,
      Logging: {
        Bucket: { "Fn::GetAtt": [logicalId(site.logBucket), "RegionalDomainName"] },
        Prefix: "cloudfront/",
        IncludeCookies: false,
      },
      DefaultCacheBehavior: {
        ViewerProtocolPolicy: "redirect-to-https",
        AllowedMethods: ["GET", "HEAD"],
        CachePolicyId: CachePolicy.CACHING_OPTIMIZED.cachePolicyId,
        ResponseHeadersPolicyId: ref(site.responseHeadersPolicy),
      },
    });
    const s3Origin = originById(config.DefaultCacheBehavior.TargetOriginId);
    expect(s3Origin).toMatchObject({
      DomainName: { "Fn::GetAtt": [logicalId(site.bucket), "RegionalDomainName"] },
      OriginAccessControlId: { "Fn::GetAtt": [expect.stringMatching(/OriginAccessControl/), "Id"] },
      S3OriginConfig: { OriginAccessIdentity: "" },
    });
    t.hasResourceProperties("AWS::CloudFront::OriginAccessControl", {
      OriginAccessControlConfig: { OriginAccessControlOriginType: "s3", SigningBehavior: "always", SigningProtocol: "sigv4" },
    });
    // Default *.cloudfront.net certificate (no custom domain configured): no Aliases, no ViewerCertificate.
    expect(config.Aliases).toBeUndefined();
    expect(config.ViewerCertificate).toBeUndefined();
  });

  it("forwards /api/* to the completion API's stage: HTTPS only, all methods, no caching, Authorization forwarded, Host not", () => {
    const behaviour = apiBehaviour();
    expect(behaviour).toMatchObject({
      ViewerProtocolPolicy: "https-only",
      AllowedMethods: ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
      CachePolicyId: CachePolicy.CACHING_DISABLED.cachePolicyId,
      // Managed AllViewerExceptHostHeader: every viewer header (Authorization included) but Host.
      OriginRequestPolicyId: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId,
      ResponseHeadersPolicyId: ref(site.responseHeadersPolicy),
      FunctionAssociations: [
        { EventType: "viewer-request", FunctionARN: { "Fn::GetAtt": [expect.stringMatching(/StripApiPrefix/), "FunctionARN"] } },
      ],
    });
    expect(OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId).toBe("b689b0a8-53d0-40ab-baf2-68738e2966ac");
    const origin = originById(behaviour.TargetOriginId);
    expect(origin.CustomOriginConfig).toEqual({ OriginProtocolPolicy: "https-only", OriginSSLProtocols: ["TLSv1.2"] });
    // Domain and origin path (the stage) both come from the API's stage URL.
    const serialized = JSON.stringify(origin);
    expect(serialized).toContain(logicalId(stack.completionApi.api));
    expect(serialized).toContain(logicalId(stack.completionApi.api.deploymentStage));
    expect(JSON.stringify(origin.OriginPath)).toContain('"Fn::Select":[3');
  });

  it("strips /api before the request reaches the stage (CloudFront appends the whole path to the origin path)", () => {
    t.hasResourceProperties("AWS::CloudFront::Function", {
      FunctionCode: STRIP_API_PREFIX_CODE,
      FunctionConfig: Match.objectLike({ Runtime: "cloudfront-js-2.0" }),
      AutoPublish: true,
    });
    const handler = new Function(`${STRIP_API_PREFIX_CODE}; return handler;`)() as (e: { request: { uri: string } }) => { uri: string };
    const rewrite = (uri: string) => handler({ request: { uri } }).uri;
    expect(rewrite("/api/worklist")).toBe("/worklist");
    expect(rewrite("/api/completions")).toBe("/completions");
    expect(rewrite("/api/overlays/st-1")).toBe("/overlays/st-1");
    expect(rewrite("/apiworklist")).toBe("/apiworklist");
  });

  it("adds the page's CSP (the local server's, plus the hosted UI for the token exchange and the studies bucket for uploads, viewer volumes and thumbnails), HSTS, nosniff, no-referrer and frame DENY", () => {
    expect(WORKLIST_CONTENT_SECURITY_POLICY).toBe(CONTENT_SECURITY_POLICY);
    const hostedUi = `https://\${${logicalId(site.userPoolDomain)}}.auth.\${AWS::Region}.amazoncognito.com`;
    expect(CONTENT_SECURITY_POLICY).toContain("connect-src 'self';");
    const [before, after] = CONTENT_SECURITY_POLICY.split("connect-src 'self'") as [string, string];
    const policy = Object.values(t.findResources("AWS::CloudFront::ResponseHeadersPolicy"))[0]?.Properties.ResponseHeadersPolicyConfig
      .SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy;
    // … and the studies bucket, which takes the page's presigned mask uploads.
    const studies = `https://\${${logicalId(stack.studies.bucket)}.RegionalDomainName}`;
    const images = before.replace("img-src 'self' data:;", `img-src 'self' data: ${studies};`);
    expect(images).not.toBe(before);
    expect(renderJoin(policy)).toBe(`${images}connect-src 'self' ${hostedUi} ${studies}${after}`);
    t.hasResourceProperties("AWS::CloudFront::ResponseHeadersPolicy", {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: {
          ContentSecurityPolicy: { ContentSecurityPolicy: Match.anyValue(), Override: true },
          StrictTransportSecurity: { AccessControlMaxAgeSec: 31_536_000, IncludeSubdomains: true, Override: true },
          ContentTypeOptions: { Override: true },
          ReferrerPolicy: { ReferrerPolicy: "no-referrer", Override: true },
          FrameOptions: { FrameOption: "DENY", Override: true },
        },
      }),
    });
  });
});

describe("worklist site: buckets", () => {
  it("keeps the site bucket private: public access blocked, ACLs off, TLS only, versioned, access-logged", () => {
    t.hasResourceProperties("AWS::S3::Bucket", {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      VersioningConfiguration: { Status: "Enabled" },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
      LoggingConfiguration: { DestinationBucketName: ref(site.logBucket), LogFilePrefix: "site/" },
    });
    const policy = Object.values(t.findResources("AWS::S3::BucketPolicy")).find(
      (p) => JSON.stringify(p.Properties.Bucket) === JSON.stringify(ref(site.bucket)),
    );
    const statements = policy?.Properties.PolicyDocument.Statement as Record<string, unknown>[];
    // Only CloudFront, only GetObject, only for this distribution; everything without TLS is denied.
    const allows = statements.filter((s) => s.Effect === "Allow");
    expect(allows).toEqual([
      expect.objectContaining({
        Principal: { Service: "cloudfront.amazonaws.com" },
        Action: "s3:GetObject",
        Condition: { StringEquals: { "AWS:SourceArn": expect.objectContaining({ "Fn::Join": expect.anything() }) } },
      }),
    ]);
    expect(JSON.stringify(allows[0]?.Condition)).toContain(distributionId);
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Principal: { AWS: "*" }, Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
  });

  it("logs to a private, TLS-only, versioned bucket that CloudFront can write (ACLs enabled for its log delivery)", () => {
    const logs = t.toJSON().Resources[logicalId(site.logBucket)].Properties;
    expect(logs).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerPreferred" }] },
      VersioningConfiguration: { Status: "Enabled" },
    });
  });
});

describe("worklist site: sign-in and page deployment", () => {
  it("gives the page a Cognito client: authorization code grant only (PKCE in the page), openid + email, callback = the distribution, no secret, 1 h ID token", () => {
    t.hasResourceProperties("AWS::Cognito::UserPoolClient", {
      UserPoolId: ref(stack.completionApi.userPool),
      GenerateSecret: false,
      AllowedOAuthFlows: ["code"],
      AllowedOAuthFlowsUserPoolClient: true,
      AllowedOAuthScopes: ["openid", "email"],
      CallbackURLs: [siteUrl],
      LogoutURLs: [siteUrl],
      SupportedIdentityProviders: ["COGNITO"],
      IdTokenValidity: 60,
      TokenValidityUnits: Match.objectLike({ IdToken: "minutes" }),
    });
    expect(Object.keys(t.findResources("AWS::Cognito::UserPoolClient"))).toEqual([logicalId(site.client)]);
    t.hasResourceProperties("AWS::Cognito::UserPoolDomain", {
      UserPoolId: ref(stack.completionApi.userPool),
      Domain: { "Fn::Join": ["-", ["ich-al-test-hospital", Match.objectLike({ "Fn::Select": [4, Match.anyValue()] })]] },
    });
  });

  it("deploys the page bundle and a config.json with apiBase /api and the hosted UI's code + PKCE endpoints", async () => {
    const config = deployedConfig();
    const hostedUi = `https://\${${logicalId(site.userPoolDomain)}}.auth.\${AWS::Region}.amazoncognito.com`;
    expect(config).toEqual({
      apiBase: "/api",
      auth: {
        authorizeUrl: `${hostedUi}/oauth2/authorize`,
        tokenUrl: `${hostedUi}/oauth2/token`,
        logoutUrl: `${hostedUi}/logout`,
        clientId: `\${${logicalId(site.client)}}`,
        redirectUri: `https://\${${distributionId}.DomainName}/`,
        scope: "openid email",
      },
      idleSeconds: 120,
    });
    // The page reads exactly these fields (web/worklist/src/api.ts PageConfig, whose defaults name them all).
    const pageApi = (await import(pathToFileURL(join(WORKLIST_DIR, "src", "api.ts")).href)) as { DEFAULT_CONFIG: object };
    expect(Object.keys(config).sort()).toEqual(Object.keys(pageApi.DEFAULT_CONFIG).sort());

    t.hasResourceProperties("Custom::CDKBucketDeployment", {
      DestinationBucketName: ref(site.bucket),
      DistributionId: ref(site.distribution),
      DistributionPaths: ["/*"],
      Prune: true,
      SystemMetadata: { "cache-control": "no-cache" },
    });
    // The CDK handler runs with this construct's role (one customer-managed policy) and its encrypted log group.
    const role = site.node.findChild("DeploymentRole");
    t.hasResourceProperties("AWS::Lambda::Function", {
      Role: arn(role),
      LoggingConfig: { LogGroup: ref(site.deploymentLogGroup) },
      Layers: Match.anyValue(),
    });
    t.hasResourceProperties("AWS::Logs::LogGroup", { KmsKeyId: arn(stack.dataKey.key), RetentionInDays: 365 });
  });

  it("links the weekly e-mail to the page: notify's WORKLIST_URL is the distribution's URL", () => {
    t.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ WORKLIST_URL: siteUrl }) },
    });
    expect(t.findOutputs("WorklistUrl").WorklistUrl?.Value).toEqual(siteUrl);
  });
});

describe("WorklistSite props", () => {
  const standalone = (props: Partial<ConstructorParameters<typeof WorklistSite>[2]> = {}) => {
    const custom = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const s = new Stack(custom, "Site", { env: { account: "123456789012", region: "eu-central-1" } });
    const api = new RestApi(s, "Api", { deployOptions: { stageName: "v1" } });
    api.root.addMethod("GET");
    const construct = new WorklistSite(s, "WorklistSite", {
      institution: "st-elsewhere",
      api,
      userPool: new UserPool(s, "Pool"),
      encryptionKey: new Key(s, "Key"),
      uploadOrigin: "https://studies.s3.eu-central-1.amazonaws.com",
      ...props,
    });
    return { construct, t: Template.fromStack(s) };
  };

  it("with a custom domain: alias, its ACM certificate, TLSv1.2_2021 minimum (SNI), and the callback on that domain", () => {
    const certificate = Certificate.fromCertificateArn(
      new Stack(new App(), "Certs"),
      "Certificate",
      "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
    );
    const { construct, t: custom } = standalone({ customDomain: { domainName: "worklist.st-elsewhere.org", certificate } });
    custom.hasResourceProperties("AWS::CloudFront::Distribution", {
      DistributionConfig: Match.objectLike({
        Aliases: ["worklist.st-elsewhere.org"],
        ViewerCertificate: {
          AcmCertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
          MinimumProtocolVersion: "TLSv1.2_2021",
          SslSupportMethod: "sni-only",
        },
      }),
    });
    custom.hasResourceProperties("AWS::Cognito::UserPoolClient", { CallbackURLs: ["https://worklist.st-elsewhere.org/"] });
    expect(construct.url).toBe("https://worklist.st-elsewhere.org/");
    // With TLSv1.2_2021 in force, nothing acknowledges AwsSolutions-CFR4.
    const acks = construct.distribution.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    expect(JSON.stringify(acks)).not.toContain("CFR4");
  });

  it("refuses an institution id Cognito rejects in a domain prefix, and out-of-range settings, naming the fix", () => {
    expect(() => standalone({ institution: "amazon-general" })).toThrow(/choose an institution id without them/);
    expect(() => standalone({ idleSeconds: 0 })).toThrow(/idleSeconds must be an integer ≥ 10/);
  });
});
