//! Elastic Load Balancing, v2 (application, network, gateway) and classic: the listeners and
//! their certificates in one region, and the calls that move a listener to another
//! certificate, over aws-sdk-elasticloadbalancing(v2).

use super::{Page, classify};
use crate::error::ApiError;

/// An ELBv2 load balancer (application, network or gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerV2 {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `application`, `network` or `gateway`.
    pub kind: String,
}

/// An ELBv2 listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerV2 {
    /// Its ARN.
    pub arn: String,
    /// Its port.
    pub port: i32,
    /// HTTPS, TLS, HTTP, TCP...
    pub protocol: String,
    /// Its default certificate.
    pub default_certificate: Option<String>,
}

/// A classic load balancer and its listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicLb {
    /// Its name.
    pub name: String,
    /// Its listeners: port, protocol, certificate.
    pub listeners: Vec<(i32, String, Option<String>)>,
}

/// What certvault asks of Elastic Load Balancing v2 in one region.
pub trait ElbV2Api: Send + Sync {
    /// DescribeLoadBalancers, one page.
    fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<LoadBalancerV2>, ApiError>> + Send;
    /// DescribeListeners of one load balancer, one page.
    fn listeners(
        &self,
        lb_arn: &str,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<ListenerV2>, ApiError>> + Send;
    /// DescribeListenerCertificates, one page: (certificate ARN, is the default).
    fn listener_certificates(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<(String, bool)>, ApiError>> + Send;
    /// DescribeListeners of one listener: its default certificate now (`Ok(None)` when it
    /// has none), read again right before it is changed.
    fn listener_default(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// ModifyListener with `Certificates = [cert]`: the default certificate only.
    fn set_default_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// AddListenerCertificates (an SNI certificate).
    fn add_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// RemoveListenerCertificates (an SNI certificate).
    fn remove_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// What certvault asks of classic Elastic Load Balancing in one region.
pub trait ElbApi: Send + Sync {
    /// DescribeLoadBalancers, one page.
    fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<ClassicLb>, ApiError>> + Send;
    /// SetLoadBalancerListenerSSLCertificate: the listener keeps running with the new one.
    fn set_certificate(
        &self,
        lb_name: &str,
        port: i32,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// ELBv2, through aws-sdk-elasticloadbalancingv2.
#[derive(Debug, Clone)]
pub struct SdkElbV2 {
    pub(crate) client: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) region: String,
}

impl ElbV2Api for SdkElbV2 {
    async fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> Result<Page<LoadBalancerV2>, ApiError> {
        let out = self
            .client
            .describe_load_balancers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeLoadBalancers", &self.region, e))?;
        Ok((
            out.load_balancers()
                .iter()
                .map(|lb| LoadBalancerV2 {
                    arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
                    name: lb.load_balancer_name().unwrap_or_default().to_owned(),
                    kind: lb
                        .r#type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn listeners(
        &self,
        lb_arn: &str,
        marker: Option<String>,
    ) -> Result<Page<ListenerV2>, ApiError> {
        let out = self
            .client
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeListeners", &self.region, e))?;
        Ok((
            out.listeners()
                .iter()
                .map(|l| ListenerV2 {
                    arn: l.listener_arn().unwrap_or_default().to_owned(),
                    port: l.port().unwrap_or_default(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    default_certificate: l
                        .certificates()
                        .first()
                        .and_then(|c| c.certificate_arn())
                        .map(str::to_owned),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn listener_default(&self, listener_arn: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| classify("DescribeListeners", &self.region, e))?;
        Ok(out
            .listeners()
            .iter()
            .find(|l| l.listener_arn() == Some(listener_arn))
            .and_then(|l| l.certificates().first())
            .and_then(|c| c.certificate_arn())
            .map(str::to_owned))
    }

    async fn listener_certificates(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(String, bool)>, ApiError> {
        let out = self
            .client
            .describe_listener_certificates()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeListenerCertificates", &self.region, e))?;
        Ok((
            out.certificates()
                .iter()
                .filter_map(|c| {
                    c.certificate_arn()
                        .map(|a| (a.to_owned(), c.is_default().unwrap_or(false)))
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn set_default_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .modify_listener()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("ModifyListener", &self.region, e))?;
        Ok(())
    }

    async fn add_certificate(&self, listener_arn: &str, cert: &str) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .add_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("AddListenerCertificates", &self.region, e))?;
        Ok(())
    }

    async fn remove_certificate(&self, listener_arn: &str, cert: &str) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .remove_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("RemoveListenerCertificates", &self.region, e))?;
        Ok(())
    }
}

/// Classic ELB, through aws-sdk-elasticloadbalancing.
#[derive(Debug, Clone)]
pub struct SdkElb {
    pub(crate) client: aws_sdk_elasticloadbalancing::Client,
    pub(crate) region: String,
}

impl ElbApi for SdkElb {
    async fn load_balancers(&self, marker: Option<String>) -> Result<Page<ClassicLb>, ApiError> {
        let out = self
            .client
            .describe_load_balancers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeLoadBalancers", &self.region, e))?;
        Ok((
            out.load_balancer_descriptions()
                .iter()
                .map(|lb| ClassicLb {
                    name: lb.load_balancer_name().unwrap_or_default().to_owned(),
                    listeners: lb
                        .listener_descriptions()
                        .iter()
                        .filter_map(|d| d.listener())
                        .map(|l| {
                            (
                                l.load_balancer_port(),
                                l.protocol().to_owned(),
                                l.ssl_certificate_id().map(str::to_owned),
                            )
                        })
                        .collect(),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn set_certificate(&self, lb_name: &str, port: i32, cert: &str) -> Result<(), ApiError> {
        self.client
            .set_load_balancer_listener_ssl_certificate()
            .load_balancer_name(lb_name)
            .load_balancer_port(port)
            .ssl_certificate_id(cert)
            .send()
            .await
            .map_err(|e| classify("SetLoadBalancerListenerSSLCertificate", &self.region, e))?;
        Ok(())
    }
}
