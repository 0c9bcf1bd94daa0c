import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { AssetHashType, Aws, DefaultStackSynthesizer, DockerImage, Duration, Fn, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import type { RestApi } from "aws-cdk-lib/aws-apigateway";
import type { ICertificate } from "aws-cdk-lib/aws-certificatemanager";
import {
  AllowedMethods,
  CachePolicy,
  Function as CloudFrontFunction,
  Distribution,
  FunctionCode,
  FunctionEventType,
  FunctionRuntime,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  OriginRequestPolicy,
  PriceClass,
  ResponseHeadersPolicy,
  SecurityPolicyProtocol,
  SSLMethod,
  ViewerProtocolPolicy,
} from "aws-cdk-lib/aws-cloudfront";
import { RestApiOrigin, S3BucketOrigin } from "aws-cdk-lib/aws-cloudfront-origins";
import {
  ClientAttributes,
  OAuthScope,
  type UserPool,
  type UserPoolClient,
  UserPoolClientIdentityProvider,
  type UserPoolDomain,
} from "aws-cdk-lib/aws-cognito";
import { ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from "aws-cdk-lib/aws-s3";
import { BucketDeployment, CacheControl, Source } from "aws-cdk-lib/aws-s3-deployment";
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from "aws-cdk-lib/cx-api";
import { Construct } from "constructs";
import type { OAuthConfig } from "../web/worklist/src/auth.js";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { REPO_ROOT } from "./lambda-function.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";
import { resourceFindingId } from "./nag-ids.js";

/** The page's folder; `build.ts` there bundles it (index.html, worklist.css, app.js). */
export const WORKLIST_DIR = join(REPO_ROOT, "web", "worklist");

/** Where the page calls the completion API: same origin, forwarded by the distribution's `/api/*` behaviour. */
export const API_PATH_PREFIX = "/api";

/**
 * The page's Content-Security-Policy: everything from the page's own origin (the API included), no
 * inline script or style, no framing; `signInOrigin` (the Cognito hosted UI) may also be fetched, for
 * the code-for-token exchange of the PKCE sign-in, and `uploadOrigin` (the studies bucket) takes the
 * page's presigned mask uploads (PUT) and serves its presigned viewer volumes (GET) and thumbnails (img). Without them, the local server's policy
 * (scripts/lib/worklist-server.ts CONTENT_SECURITY_POLICY, whose token endpoint is on the page's own
 * origin; test/infra/worklist-site.test.ts holds them equal).
 */
export function worklistContentSecurityPolicy(signInOrigin?: string, uploadOrigin?: string): string {
  const extra = [signInOrigin, uploadOrigin].filter((origin) => origin !== undefined).map((origin) => ` ${origin}`);
  return (
    `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:${uploadOrigin ? ` ${uploadOrigin}` : ""}; connect-src 'self'${extra.join("")}; ` +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
  );
}

/** The policy with nothing but the page's own origin. */
export const WORKLIST_CONTENT_SECURITY_POLICY = worklistContentSecurityPolicy();

/**
 * CloudFront Function (viewer request) of the `/api/*` behaviour: `/api/worklist` → `/worklist`. CloudFront
 * appends the whole viewer path to the origin path (`/v1`), so without it the stage would see `/v1/api/worklist`.
 */
export const STRIP_API_PREFIX_CODE = `function handler(event) {
  var request = event.request;
  if (request.uri.indexOf("${API_PATH_PREFIX}/") === 0) request.uri = request.uri.substring(${API_PATH_PREFIX.length});
  return request;
}`;

/**
 * The page's `config.json` (web/worklist/src/api.ts PageConfig; that file is compiled for the browser, so it
 * is mirrored here and test/infra/worklist-site.test.ts holds the field names equal).
 */
export interface WorklistPageConfig {
  /** Base of the API: `/api` on the page's own origin. */
  readonly apiBase: string;
  /** Sign-in against the Cognito hosted UI: authorization code grant with PKCE (the page's own type). */
  readonly auth: OAuthConfig;
  /** Seconds without input after which active time stops counting. */
  readonly idleSeconds: number;
}

/** A custom domain for the page, e.g. `worklist.st-elsewhere.org`. */
export interface WorklistSiteDomain {
  /** The host name annotators type; point a CNAME (or Route 53 alias) at the distribution's domain name. */
  readonly domainName: string;
  /** ACM certificate for `domainName` in us-east-1 (CloudFront's region for viewer certificates). */
  readonly certificate: ICertificate;
}

export interface WorklistSiteProps {
  /** Institution id; starts the Cognito hosted-UI domain prefix `ich-al-<institution>-<12 hex of the stack id>`. */
  readonly institution: string;
  /** The completion API; the distribution forwards `/api/*` to its deployment stage. */
  readonly api: RestApi;
  /** The annotators' user pool; the site adds the hosted-UI domain and the page's client to it. */
  readonly userPool: UserPool;
  /** Customer-managed key of the page-deployment Lambda's log group. */
  readonly encryptionKey: IKey;
  /** Where the page PUTs mask uploads (presigned): the studies bucket's origin, `https://<regional domain>`. */
  readonly uploadOrigin: string;
  /** Seconds without input after which active time stops counting. Default: 120. */
  readonly idleSeconds?: number;
  /** How long a sign-in lasts: the ID token's validity, 5 min–1 day. Default: one hour. */
  readonly idTokenValidity?: Duration;
  /**
   * Serve the page on this domain with its ACM certificate and a TLSv1.2_2021 minimum. Default: none — the
   * distribution's own `*.cloudfront.net` name and CloudFront's default certificate (whose security policy
   * CloudFront fixes at TLSv1; current browsers negotiate TLS 1.2 or 1.3 with it).
   */
  readonly customDomain?: WorklistSiteDomain;
  /** Retention of the page-deployment Lambda's log group. Default: one year. */
  readonly logRetention?: RetentionDays;
  /** What happens to the site and log buckets when the stack is deleted. Default: RETAIN. */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The annotators' worklist page (web/worklist) in AWS, on one HTTPS origin with its API:
 *
 *   https://<distribution>/          → private S3 bucket (origin access control), the page bundle + config.json
 *   https://<distribution>/api/*     → the completion API's stage (`/api` stripped; no caching; all methods;
 *                                      every viewer header but Host forwarded, Authorization included)
 *
 * Same origin, so no CORS. The page is built at synth without Docker (web/worklist/build.ts, run with tsx
 * into CDK's asset staging folder) and copied by a BucketDeployment with a generated `config.json`
 * (apiBase `/api`, the Cognito hosted-UI sign-in URL, label prefix, idle seconds); each deploy
 * invalidates the distribution and objects carry `Cache-Control: no-cache`, so browsers revalidate.
 *
 * Sign-in: the user pool gets a hosted-UI domain and the page's client (public, no secret; authorization
 * code grant only, which the page uses with PKCE; scopes openid + email; callback and sign-out URL = the
 * page; ID token valid one hour by default). The hosted UI returns `?code=` to the page, which exchanges
 * it with its code verifier at the token endpoint (the CSP allows that one origin) and sends the ID token
 * as `Authorization` to `/api/*`; sign-out goes through the hosted UI's logout endpoint.
 *
 * Secure defaults: both buckets block public access, deny non-TLS requests and are versioned; the site
 * bucket has ACLs disabled and server access logs; CloudFront redirects HTTP to HTTPS for the page and
 * refuses HTTP on `/api/*`, adds CSP, HSTS (one year), nosniff, `Referrer-Policy: no-referrer` and
 * `X-Frame-Options: DENY` to every response, logs requests (no cookies), and uses price class 100.
 *
 * Encryption: both buckets use SSE-S3, not the data key. The site bucket holds only what CloudFront hands
 * to any browser (the page's code and config.json with the public client id and URLs), so a KMS key adds
 * no confidentiality; opening the data key to CloudFront would need a key-policy grant to every
 * distribution of the account (the distribution's id cannot appear in the policy of a key the bucket
 * depends on without a cycle). The log bucket takes CloudFront standard logs, which need ACLs, and S3
 * server access logs, which support only SSE-S3.
 */
export class WorklistSite extends Construct {
  /** The private bucket the page is served from. */
  readonly bucket: Bucket;
  /** CloudFront standard logs (`cloudfront/`) and the site bucket's server access logs (`site/`). */
  readonly logBucket: Bucket;
  /** The distribution (`distributionDomainName` is the page's host unless `customDomain` is set). */
  readonly distribution: Distribution;
  /** Security headers on every response. */
  readonly responseHeadersPolicy: ResponseHeadersPolicy;
  /** The Cognito hosted-UI domain. */
  readonly userPoolDomain: UserPoolDomain;
  /** The page's user-pool client (authorization code grant with PKCE, no secret). */
  readonly client: UserPoolClient;
  /** The page's URL, `https://<host>/`: the client's callback and the weekly e-mail's link. */
  readonly url: string;
  /** The hosted UI's origin, `https://<prefix>.auth.<region>.amazoncognito.com` (sign-in and sign-out). */
  readonly signInOrigin: string;
  /** The page-deployment Lambda's log group. */
  readonly deploymentLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: WorklistSiteProps) {
    super(scope, id);
    if (/aws|amazon|cognito/.test(props.institution)) {
      throw new Error(
        `WorklistSite: Cognito domain prefixes may not contain "aws", "amazon" or "cognito", and the prefix starts with the institution id ${JSON.stringify(props.institution)}; choose an institution id without them`,
      );
    }
    const idleSeconds = props.idleSeconds ?? 120;
    if (!Number.isInteger(idleSeconds) || idleSeconds < 10) {
      throw new Error(`WorklistSite: idleSeconds must be an integer ≥ 10, got ${idleSeconds}; the default is 120`);
    }
    const idTokenValidity = props.idTokenValidity ?? Duration.hours(1);
    if (idTokenValidity.toSeconds() < 300 || idTokenValidity.toSeconds() > 86_400) {
      throw new Error(`WorklistSite: idTokenValidity must be 5 min–1 day (Cognito's limits), got ${idTokenValidity.toSeconds()} s`);
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    // S3 server access logs are granted through the log bucket's policy, not the LogDeliveryWrite ACL.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);

    this.logBucket = new Bucket(this, "Logs", {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      // CloudFront standard logging writes with an ACL grant to its log-delivery account: ACLs must be enabled.
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      versioned: true,
      removalPolicy,
    });
    const logTarget =
      "log bucket of the worklist site (CloudFront standard logs and the site bucket's S3 server access logs): S3 server-access-log delivery supports only SSE-S3 on the target bucket, and the logs hold request metadata, never studies";
    const logReplication =
      "log bucket of the worklist site: versioned and retained in-region; replicating request metadata to another region needs the same data-residency approval as the studies";
    Validations.of(this.logBucket).acknowledge(
      { id: "HIPAA.Security-S3DefaultEncryptionKMS", reason: logTarget },
      { id: "NIST.800.53.R5-S3DefaultEncryptionKMS", reason: logTarget },
      { id: "HIPAA.Security-S3BucketReplicationEnabled", reason: logReplication },
      { id: "NIST.800.53.R5-S3BucketReplicationEnabled", reason: logReplication },
    );

    this.bucket = new Bucket(this, "Site", {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: "site/",
      removalPolicy,
    });
    const publicContent =
      "worklist site bucket: holds only the page's code and config.json (public client id and URLs), which CloudFront serves to any browser, so a KMS key adds no confidentiality; SSE-S3 keeps the data key closed to CloudFront, whose key-policy grant could not name this distribution without a dependency cycle";
    const rebuilt =
      "worklist site bucket: its content is rebuilt from the repository and copied by every deploy, so a replica would hold nothing that cannot be restored by deploying again";
    Validations.of(this.bucket).acknowledge(
      { id: "HIPAA.Security-S3DefaultEncryptionKMS", reason: publicContent },
      { id: "NIST.800.53.R5-S3DefaultEncryptionKMS", reason: publicContent },
      { id: "HIPAA.Security-S3BucketReplicationEnabled", reason: rebuilt },
      { id: "NIST.800.53.R5-S3BucketReplicationEnabled", reason: rebuilt },
    );

    // Cognito domain prefixes are global per region: the stack id's last 12 hex digits keep this one unique and stable.
    const stackSuffix = Fn.select(4, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))));
    this.userPoolDomain = props.userPool.addDomain("HostedUi", {
      cognitoDomain: { domainPrefix: Fn.join("-", ["ich-al", props.institution, stackSuffix]) },
    });
    this.signInOrigin = this.userPoolDomain.baseUrl();

    this.responseHeadersPolicy = new ResponseHeadersPolicy(this, "SecurityHeaders", {
      comment: "Worklist page: CSP, HSTS, nosniff, no referrer, no framing",
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: worklistContentSecurityPolicy(this.signInOrigin, props.uploadOrigin),
          override: true,
        },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
        contentTypeOptions: { override: true },
        referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
        frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
      },
    });
    const stripApiPrefix = new CloudFrontFunction(this, "StripApiPrefix", {
      comment: `Worklist: ${API_PATH_PREFIX}/<path> -> /<path> before the request reaches the API stage`,
      runtime: FunctionRuntime.JS_2_0,
      code: FunctionCode.fromInline(STRIP_API_PREFIX_CODE),
    });

    const domain = props.customDomain;
    this.distribution = new Distribution(this, "Distribution", {
      comment: `ICH labeling worklist (${props.institution})`,
      defaultRootObject: "index.html",
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: this.responseHeadersPolicy,
        compress: true,
      },
      additionalBehaviors: {
        [`${API_PATH_PREFIX}/*`]: {
          // The origin path is the stage (`/v1`), taken from the API's URL.
          origin: new RestApiOrigin(props.api),
          // A token sent over HTTP is refused, not silently redirected (a redirect would also drop a POST body).
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          // An origin request policy cannot name Authorization; the managed all-viewer policies forward it.
          // Host must not reach API Gateway (it routes on its own execute-api host name).
          originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: this.responseHeadersPolicy,
          functionAssociations: [{ function: stripApiPrefix, eventType: FunctionEventType.VIEWER_REQUEST }],
        },
      },
      enableLogging: true,
      logBucket: this.logBucket,
      logFilePrefix: "cloudfront/",
      logIncludesCookies: false,
      priceClass: PriceClass.PRICE_CLASS_100,
      httpVersion: HttpVersion.HTTP2_AND_3,
      ...(domain
        ? {
            domainNames: [domain.domainName],
            certificate: domain.certificate,
            minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
            sslSupportMethod: SSLMethod.SNI,
          }
        : {}),
    });
    const host = domain?.domainName ?? this.distribution.distributionDomainName;
    this.url = `https://${host}/`;

    const noWaf =
      "worklist page: static files that need no sign-in to fetch plus /api/*, where every method needs a Cognito token of one of a handful of configured annotators and the stage throttles to 5 rps; Cognito threat protection guards sign-in; a WAF web ACL would cost more per month than the rest of the idle stack";
    const noGeo =
      "annotators are a handful of named radiologists who may work while travelling; access is decided by Cognito sign-in (MFA required), not by country, and the static files are not confidential";
    const acks = [
      { id: "AwsSolutions-CFR1", reason: noGeo },
      { id: "AwsSolutions-CFR2", reason: noWaf },
    ];
    if (!domain) {
      acks.push({
        id: "AwsSolutions-CFR4",
        reason:
          "no customDomain configured: the page is served on the distribution's *.cloudfront.net name, whose default certificate CloudFront pins to the TLSv1 security policy; current browsers negotiate TLS 1.2/1.3 with it, and WorklistSite's customDomain (an ACM certificate for a host the institution owns) sets TLSv1.2_2021",
      });
    }
    Validations.of(this.distribution).acknowledge(...acks);

    // Created as the user pool's child with the id the SRP-only client had, so deployed stacks update it in place.
    this.client = props.userPool.addClient("WorklistPage", {
      generateSecret: false,
      authFlows: { userSrp: true },
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [OAuthScope.OPENID, OAuthScope.EMAIL],
        callbackUrls: [this.url],
        logoutUrls: [this.url],
      },
      supportedIdentityProviders: [UserPoolClientIdentityProvider.COGNITO],
      // What a signed-in user may change about themselves through this client: the locale only. Never `email`
      // (nor any other attribute): the API maps the immutable `sub` to the configured address, and an address
      // only an administrator can change keeps the e-mailed worklist going to the person it was assigned to.
      writeAttributes: new ClientAttributes().withStandardAttributes({ locale: true }),
      preventUserExistenceErrors: true,
      idTokenValidity,
      accessTokenValidity: idTokenValidity,
      refreshTokenValidity: Duration.hours(12),
      enableTokenRevocation: true,
    });
    const pageConfig: WorklistPageConfig = {
      apiBase: API_PATH_PREFIX,
      auth: {
        authorizeUrl: `${this.signInOrigin}/oauth2/authorize`,
        tokenUrl: `${this.signInOrigin}/oauth2/token`,
        logoutUrl: `${this.signInOrigin}/logout`,
        clientId: this.client.userPoolClientId,
        redirectUri: this.url,
        scope: "openid email",
      },
      idleSeconds,
    };
    this.deploymentLogGroup = encryptedLogGroup(this, "DeploymentLogs", {
      encryptionKey: props.encryptionKey,
      retention: props.logRetention,
    });
    const deploymentRole = new ManagedPolicyRole(this, "DeploymentRole", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: "CDK BucketDeployment of the worklist page: copy the page bundle into the site bucket, invalidate the distribution",
    });
    this.deploymentLogGroup.grantWrite(deploymentRole);
    new BucketDeployment(this, "Deployment", {
      sources: [pageBundle(), Source.jsonData("config.json", pageConfig)],
      destinationBucket: this.bucket,
      distribution: this.distribution,
      distributionPaths: ["/*"],
      prune: true,
      cacheControl: [CacheControl.noCache()],
      role: deploymentRole,
      logGroup: this.deploymentLogGroup,
      memoryLimit: 256,
    });
    this.acknowledgeDeploymentFindings(deploymentRole);
  }

  /** The CDK-internal BucketDeployment handler (a stack-level singleton Lambda) and the role this construct gives it. */
  private acknowledgeDeploymentFindings(role: ManagedPolicyRole): void {
    const stack = Stack.of(this);
    const handler = stack.node.children.find((c) => c.node.id.startsWith("Custom::CDKBucketDeployment"));
    if (!handler) {
      throw new Error(
        "WorklistSite: CDK's BucketDeployment handler (Custom::CDKBucketDeployment…) not found at the stack root; check aws-cdk-lib",
      );
    }
    const cdkInternal =
      "CDK-internal BucketDeployment handler (Custom::CDKBucketDeployment, Python + AWS CLI layer) that runs only during a CloudFormation deploy to copy the worklist page into its bucket";
    const handlerAcks = [
      {
        id: "HIPAA.Security-LambdaInsideVPC",
        reason: `${cdkInternal}: it reaches only S3 and CloudFront APIs over TLS with IAM; a VPC adds NAT or endpoints and no control over the data path`,
      },
      {
        id: "NIST.800.53.R5-LambdaInsideVPC",
        reason: `${cdkInternal}: it reaches only S3 and CloudFront APIs over TLS with IAM; a VPC adds NAT or endpoints and no control over the data path`,
      },
      {
        id: "HIPAA.Security-LambdaDLQ",
        reason: `${cdkInternal}: invoked synchronously by CloudFormation, which reports a failure as a failed deploy and rolls back; a DLQ only receives asynchronous invocations`,
      },
      {
        id: "NIST.800.53.R5-LambdaDLQ",
        reason: `${cdkInternal}: invoked synchronously by CloudFormation, which reports a failure as a failed deploy and rolls back; a DLQ only receives asynchronous invocations`,
      },
      {
        id: "HIPAA.Security-LambdaConcurrency",
        reason: `${cdkInternal}: invoked once per deploy by CloudFormation, never by users; CDK exposes no reserved-concurrency setting for it`,
      },
      {
        id: "NIST.800.53.R5-LambdaConcurrency",
        reason: `${cdkInternal}: invoked once per deploy by CloudFormation, never by users; CDK exposes no reserved-concurrency setting for it`,
      },
      {
        id: "AwsSolutions-L1",
        reason: `${cdkInternal}: aws-cdk-lib pins the handler's Python runtime (python3.13 in 2.276.0) together with its code and AWS CLI layer; it moves with aws-cdk-lib upgrades`,
      },
    ];
    Validations.of(handler).acknowledge(...handlerAcks);
    acknowledgeDeploymentRole(role, this.bucket);
  }
}

/** The page bundle, built at synth by web/worklist/build.ts (esbuild, no Docker) into CDK's asset staging folder. */
const pageBundle = () => {
  const tsxCli = createRequire(import.meta.url).resolve("tsx/cli");
  const buildScript = join(WORKLIST_DIR, "build.ts");
  return Source.asset(WORKLIST_DIR, {
    // Hash what is deployed: app.js also bundles code from outside web/worklist.
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: local bundling either succeeds or throws, so synth never falls back to Docker.
      image: DockerImage.fromRegistry("public.ecr.aws/docker/library/node:24-slim"),
      local: {
        tryBundle(outputDir: string): boolean {
          try {
            execFileSync(process.execPath, [tsxCli, buildScript, outputDir], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
          } catch (error) {
            const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
            throw new Error(`WorklistSite: building the worklist page (tsx ${buildScript}) failed: ${stderr || String(error)}`, {
              cause: error,
            });
          }
          return true;
        },
      },
    },
  });
};

/**
 * The wildcards CDK's BucketDeployment grants its handler's role (`role` here, so they land in its one
 * customer-managed policy), each with why it is needed. `site` is the destination bucket.
 */
const acknowledgeDeploymentRole = (role: ManagedPolicyRole, site: Bucket): void => {
  const cdk = "granted by CDK's BucketDeployment to its handler";
  const assets = `cdk-${DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets-<AWS::AccountId>-<AWS::Region>`;
  Validations.of(role).acknowledge(
    {
      id: "AwsSolutions-IAM5[Action::s3:GetObject*]",
      reason: `${cdk}: read the page bundle's zip from the CDK asset bucket and compare the objects already in the site bucket (GetObject, GetObjectVersion, tagging, ACL reads)`,
    },
    {
      id: "AwsSolutions-IAM5[Action::s3:GetBucket*]",
      reason: `${cdk}: the AWS CLI's s3 sync reads bucket location and settings of the asset and site buckets before copying`,
    },
    {
      id: "AwsSolutions-IAM5[Action::s3:List*]",
      reason: `${cdk}: s3 sync lists the site bucket to find objects to replace or prune, and the asset bucket to read the bundle`,
    },
    {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${assets}/*]`,
      reason: `${cdk}: read-only on objects of this account's CDK asset bucket in this region, whose keys are content hashes known only at deploy`,
    },
    {
      id: "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
      reason: `${cdk}: prune removes page files that are no longer in the bundle (the site bucket is versioned, so earlier files stay recoverable)`,
    },
    {
      id: "AwsSolutions-IAM5[Action::s3:Abort*]",
      reason: `${cdk}: abort a multipart upload of a page file that failed half-way, so no partial object is left in the site bucket`,
    },
    {
      id: `AwsSolutions-IAM5[Resource::${resourceFindingId(site)}/*]`,
      reason: `${cdk}: write, replace and prune every object of the worklist site bucket, which holds only the page bundle and config.json`,
    },
    {
      id: "AwsSolutions-IAM5[Resource::*]",
      reason: `${cdk}: only cloudfront:CreateInvalidation and cloudfront:GetInvalidation, so browsers get the new page after a deploy; CDK grants them on * and they change no distribution setting`,
    },
  );
};
