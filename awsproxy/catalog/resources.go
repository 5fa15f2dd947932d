package catalog

import (
	"net/url"
	"strings"
)

// Resources are derived from a request's parameters by per-service rules
// (the switch in resources) plus one generic rule: a parameter whose name ends in
// "Arn"/"ARN" (or "Arns"/"ARNs") and whose value is an ARN is a resource,
// unless it names a role or a KMS key passed to another service (those
// are recorded by the service that owns them: sts, iam, kms).

// arnCtx is what a rule needs to build ARNs.
type arnCtx struct {
	partition, region, account string
	op                         *Operation
	r                          *Request
	out                        []string
}

func (a *arnCtx) add(arn string) {
	if arn == "" {
		return
	}
	for _, x := range a.out {
		if x == arn {
			return
		}
	}
	a.out = append(a.out, arn)
}

// regional builds arn:<partition>:<service>:<region>:<account>:<resource>.
func (a *arnCtx) regional(service, resource string) string {
	return "arn:" + a.partition + ":" + service + ":" + a.region + ":" + a.account + ":" + resource
}

// global builds arn:<partition>:<service>::<account>:<resource>.
func (a *arnCtx) global(service, resource string) string {
	return "arn:" + a.partition + ":" + service + "::" + a.account + ":" + resource
}

// each calls fn for every value of the named parameters. (The params are
// passed apart from arnCtx so that their stack buffers stay there.)
func (a *arnCtx) each(p *params, fn func(string), names ...string) {
	for _, e := range p.kvs {
		for _, n := range names {
			if e.name == n && e.value != "" {
				fn(e.value)
			}
		}
	}
}

// named adds, for every value of the parameters, the value itself when it
// is an ARN, else the ARN build makes of it.
func (a *arnCtx) named(p *params, build func(string) string, names ...string) {
	a.each(p, func(v string) {
		if isARN(v) {
			a.add(v)
		} else {
			a.add(build(v))
		}
	}, names...)
}

func isARN(v string) bool { return strings.HasPrefix(v, "arn:") && strings.Count(v, ":") >= 5 }

// partitionOf maps a region to its partition.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-isof-"):
		return "aws-iso-f"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eusc-"):
		return "aws-eusc"
	}
	return "aws"
}

func resources(r *Request, op *Operation, p *params) []string {
	a := arnCtx{partition: partitionOf(r.Region), region: r.Region, account: r.Account, op: op, r: r}
	switch op.svc.IAMPrefix {
	case "s3":
		s3Resources(&a, p)
	case "dynamodb":
		dynamoResources(&a, p)
	case "lambda":
		lambdaResources(&a, p)
	case "secretsmanager":
		secretsResources(&a, p)
	case "ssm":
		ssmResources(&a, p)
	case "sqs":
		sqsResources(&a, p)
	case "sns":
		snsResources(&a, p)
	case "kms":
		kmsResources(&a, p)
	case "ec2":
		ec2Resources(&a, p)
	case "iam":
		iamResources(&a, p)
	case "rds":
		rdsResources(&a, p)
	case "cloudformation":
		cfnResources(&a, p)
	case "ecs":
		ecsResources(&a, p)
	case "logs":
		logsResources(&a, p)
	case "bedrock":
		bedrockResources(&a, p)
	}
	owner := op.svc.IAMPrefix
	for _, e := range p.kvs {
		if !isARN(e.value) || !arnParam(e.name) {
			continue
		}
		n := strings.ToLower(e.name)
		if owner != "sts" && owner != "iam" && strings.Contains(n, "role") {
			continue
		}
		if owner != "kms" && strings.Contains(n, "kms") {
			continue
		}
		a.add(e.value)
	}
	if len(a.out) == 0 {
		return nil
	}
	return a.out
}

func arnParam(name string) bool {
	for _, s := range []string{"Arn", "ARN", "arn", "Arns", "ARNs", "arns"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func s3Resources(a *arnCtx, p *params) {
	if a.op.svc.Name != "s3" {
		return
	}
	bucket := p.get("Bucket")
	if bucket == "" {
		return
	}
	if key := p.get("Key"); key != "" {
		a.add("arn:" + a.partition + ":s3:::" + bucket + "/" + key)
	} else {
		a.add("arn:" + a.partition + ":s3:::" + bucket)
	}
	// CopyObject and UploadPartCopy read the source object.
	if src := p.get("CopySource"); src != "" {
		src, _, _ = strings.Cut(src, "?versionId=")
		if u, err := url.PathUnescape(src); err == nil {
			src = u
		}
		src = strings.TrimPrefix(src, "/")
		if b, k, ok := strings.Cut(src, "/"); ok && b != "" && k != "" {
			a.add("arn:" + a.partition + ":s3:::" + b + "/" + k)
		}
	}
}

func dynamoResources(a *arnCtx, p *params) {
	table := func(t string) string { return a.regional("dynamodb", "table/"+t) }
	switch a.op.Name {
	case "BatchGetItem", "BatchWriteItem":
		a.named(p, table, "RequestItems")
		return
	case "TransactGetItems", "TransactWriteItems":
		for _, t := range jsonStrings(a.r.Body, "TransactItems", "[]", "*", "TableName") {
			if isARN(t) {
				a.add(t)
			} else {
				a.add(table(t))
			}
		}
		return
	case "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction":
		var stmts []string
		switch a.op.Name {
		case "ExecuteStatement":
			stmts = p.all("Statement")
		case "BatchExecuteStatement":
			stmts = jsonStrings(a.r.Body, "Statements", "[]", "Statement")
		default:
			stmts = jsonStrings(a.r.Body, "TransactStatements", "[]", "Statement")
		}
		for _, s := range stmts {
			if t := partiQLTable(s); t != "" {
				a.add(table(t))
			}
		}
		return
	}
	if idx := p.get("IndexName"); idx != "" {
		a.each(p, func(t string) {
			if !isARN(t) {
				t = table(t)
			}
			a.add(t + "/index/" + idx)
		}, "TableName")
		return
	}
	a.named(p, table, "TableName")
}

// partiQLTable returns the table a PartiQL statement names: the first
// identifier after FROM, INTO or UPDATE ("Music" or "Music"."Index" ->
// Music).
func partiQLTable(stmt string) string {
	if len(stmt) > 4096 {
		stmt = stmt[:4096]
	}
	up := strings.ToUpper(stmt)
	best := -1
	for _, kw := range []string{"FROM ", "INTO ", "UPDATE "} {
		if i := strings.Index(up, kw); i >= 0 && (best < 0 || i < best) {
			best = i + len(kw)
		}
	}
	if best < 0 {
		return ""
	}
	rest := strings.TrimLeft(stmt[best:], " \t\r\n")
	if strings.HasPrefix(rest, `"`) {
		if end := strings.IndexByte(rest[1:], '"'); end > 0 {
			return rest[1 : end+1]
		}
		return ""
	}
	end := 0
	for end < len(rest) && (isLetter(rest[end]) || rest[end] >= '0' && rest[end] <= '9' || strings.IndexByte("_.-", rest[end]) >= 0) {
		end++
	}
	t, _, _ := strings.Cut(rest[:end], ".")
	return t
}

func lambdaResources(a *arnCtx, p *params) {
	q := p.get("Qualifier")
	a.each(p, func(v string) {
		switch {
		case isARN(v):
			a.add(v)
		case strings.Contains(v, ":function:"):
			// 123456789012:function:name partial ARN
			acct, name, _ := strings.Cut(v, ":function:")
			a.add("arn:" + a.partition + ":lambda:" + a.region + ":" + acct + ":function:" + name)
		default:
			if q != "" && !strings.Contains(v, ":") {
				v += ":" + q
			}
			a.add(a.regional("lambda", "function:"+v))
		}
	}, "FunctionName")
	a.each(p, func(v string) {
		if isARN(v) {
			a.add(v)
			return
		}
		layer := "layer:" + v
		if n := p.get("VersionNumber"); n != "" {
			layer += ":" + n
		}
		a.add(a.regional("lambda", layer))
	}, "LayerName")
	a.each(p, func(v string) { a.add(a.regional("lambda", "event-source-mapping:"+v)) }, "UUID")
}

func secretsResources(a *arnCtx, p *params) {
	secret := func(v string) string { return a.regional("secretsmanager", "secret:"+v) }
	a.named(p, secret, "SecretId", "SecretIdList")
	if a.op.Name == "CreateSecret" {
		a.named(p, secret, "Name")
	}
}

func ssmResources(a *arnCtx, p *params) {
	param := func(v string) string {
		return a.regional("ssm", "parameter/"+strings.TrimPrefix(v, "/"))
	}
	name := a.op.Name
	switch {
	case strings.Contains(name, "Parameter"):
		a.named(p, param, "Name", "Names", "Path")
	case strings.Contains(name, "Document"):
		a.named(p, func(v string) string { return a.regional("ssm", "document/"+v) }, "Name")
	}
	a.each(p, func(v string) {
		if strings.HasPrefix(v, "i-") || strings.HasPrefix(v, "mi-") {
			a.add(a.regional("ec2", "instance/"+v))
		}
	}, "InstanceId", "InstanceIds", "Target")
}

func sqsResources(a *arnCtx, p *params) {
	a.each(p, func(v string) {
		u, err := url.Parse(v)
		if err != nil {
			return
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(parts) != 2 || parts[1] == "" {
			return
		}
		a.add("arn:" + a.partition + ":sqs:" + a.region + ":" + parts[0] + ":" + parts[1])
	}, "QueueUrl")
	a.each(p, func(v string) { a.add(a.regional("sqs", v)) }, "QueueName")
}

func snsResources(a *arnCtx, p *params) {
	if a.op.Name == "CreateTopic" {
		a.each(p, func(v string) { a.add(a.regional("sns", v)) }, "Name")
	}
}

func kmsResources(a *arnCtx, p *params) {
	a.named(p, func(v string) string {
		if strings.HasPrefix(v, "alias/") {
			return a.regional("kms", v)
		}
		return a.regional("kms", "key/"+v)
	}, "KeyId", "SourceKeyId", "DestinationKeyId", "TargetKeyId")
	a.named(p, func(v string) string { return a.regional("kms", v) }, "AliasName")
}

// ec2Kinds maps EC2 id parameters to ARN resource types.
var ec2Kinds = []struct {
	params []string
	kind   string
	noAcct bool
}{
	{[]string{"InstanceId", "InstanceIds"}, "instance", false},
	{[]string{"VolumeId", "VolumeIds"}, "volume", false},
	{[]string{"GroupId", "GroupIds", "SecurityGroupIds"}, "security-group", false},
	{[]string{"SnapshotId", "SnapshotIds"}, "snapshot", true},
	{[]string{"ImageId", "ImageIds"}, "image", true},
	{[]string{"VpcId", "VpcIds"}, "vpc", false},
	{[]string{"SubnetId", "SubnetIds"}, "subnet", false},
	{[]string{"NetworkInterfaceId", "NetworkInterfaceIds"}, "network-interface", false},
	{[]string{"KeyName"}, "key-pair", false},
	{[]string{"LaunchTemplateId"}, "launch-template", false},
}

func ec2Resources(a *arnCtx, p *params) {
	for _, k := range ec2Kinds {
		a.each(p, func(v string) {
			if k.noAcct {
				a.add("arn:" + a.partition + ":ec2:" + a.region + "::" + k.kind + "/" + v)
			} else {
				a.add(a.regional("ec2", k.kind+"/"+v))
			}
		}, k.params...)
	}
}

func iamResources(a *arnCtx, p *params) {
	a.named(p, func(v string) string { return a.global("iam", "role/"+v) }, "RoleName")
	a.named(p, func(v string) string { return a.global("iam", "user/"+v) }, "UserName")
	a.named(p, func(v string) string { return a.global("iam", "group/"+v) }, "GroupName")
	a.named(p, func(v string) string { return a.global("iam", "instance-profile/"+v) }, "InstanceProfileName")
	if a.op.Name == "CreatePolicy" {
		a.named(p, func(v string) string { return a.global("iam", "policy/"+v) }, "PolicyName")
	}
}

func rdsResources(a *arnCtx, p *params) {
	for _, k := range []struct{ param, kind string }{
		{"DBInstanceIdentifier", "db"},
		{"DBClusterIdentifier", "cluster"},
		{"DBSnapshotIdentifier", "snapshot"},
		{"DBClusterSnapshotIdentifier", "cluster-snapshot"},
		{"DBSubnetGroupName", "subgrp"},
		{"DBParameterGroupName", "pg"},
		{"DBClusterParameterGroupName", "cluster-pg"},
	} {
		a.named(p, func(v string) string { return a.regional("rds", k.kind+":"+v) }, k.param)
	}
	a.each(p, func(v string) {
		if isARN(v) {
			a.add(v)
		}
	}, "ResourceName")
}

func cfnResources(a *arnCtx, p *params) {
	a.named(p, func(v string) string { return a.regional("cloudformation", "stack/"+v+"/*") }, "StackName")
	a.named(p, func(v string) string { return a.regional("cloudformation", "stackset/"+v+":*") }, "StackSetName")
}

func ecsResources(a *arnCtx, p *params) {
	cluster := p.get("cluster")
	clusterName := cluster
	if isARN(cluster) {
		_, clusterName, _ = strings.Cut(cluster, ":cluster/")
	}
	if cluster != "" {
		a.named(p, func(v string) string { return a.regional("ecs", "cluster/"+v) }, "cluster")
	}
	if clusterName == "" {
		clusterName = "default"
	}
	a.named(p, func(v string) string { return a.regional("ecs", "service/"+clusterName+"/"+v) }, "service", "services")
	a.named(p, func(v string) string { return a.regional("ecs", "task/"+clusterName+"/"+v) }, "task", "tasks")
	a.named(p, func(v string) string { return a.regional("ecs", "container-instance/"+clusterName+"/"+v) }, "containerInstance", "containerInstances")
	a.named(p, func(v string) string { return a.regional("ecs", "task-definition/"+v) }, "taskDefinition")
	if strings.HasSuffix(a.op.Name, "Clusters") {
		a.named(p, func(v string) string { return a.regional("ecs", "cluster/"+v) }, "clusters")
	}
}

func logsResources(a *arnCtx, p *params) {
	stream := p.get("logStreamName")
	a.each(p, func(v string) {
		if isARN(v) {
			a.add(strings.TrimSuffix(v, ":*"))
			return
		}
		arn := a.regional("logs", "log-group:"+v)
		if stream != "" {
			arn += ":log-stream:" + stream
		}
		a.add(arn)
	}, "logGroupName", "logGroupIdentifier")
}

// inferenceProfilePrefixes mark cross-region inference profile ids
// ("us.anthropic.claude-...").
var inferenceProfilePrefixes = []string{"us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.", "global."}

func bedrockResources(a *arnCtx, p *params) {
	a.named(p, func(v string) string {
		for _, p := range inferenceProfilePrefixes {
			if strings.HasPrefix(v, p) {
				return a.regional("bedrock", "inference-profile/"+v)
			}
		}
		return "arn:" + a.partition + ":bedrock:" + a.region + "::foundation-model/" + v
	}, "modelId")
	a.named(p, func(v string) string { return a.regional("bedrock", "agent/"+v) }, "agentId")
	a.named(p, func(v string) string { return a.regional("bedrock", "knowledge-base/"+v) }, "knowledgeBaseId")
}
